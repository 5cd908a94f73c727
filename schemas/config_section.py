"""The base of every run-configuration section."""
from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Section(BaseModel):
    """Unknown keys are errors: a misspelt option never becomes a silently different run."""

    model_config = ConfigDict(extra="forbid")
