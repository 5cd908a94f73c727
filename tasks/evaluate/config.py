"""The evaluate configuration: the reviewer (the same ``vlm`` section as ingest) and Appendix D's protocol."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from schemas.config import VLMConfig
from schemas.config_section import RootConfig


class ProtocolConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    trials: int = Field(3, ge=1, description="Reviews per video (Appendix D: three), averaged.")
    temperature: float = Field(0.7, ge=0)
    seed: int = Field(42, description="Shuffle, bootstrap and the reviewer's sampling seeds (trial t: seed + t).")
    bootstrap: int = Field(1000, ge=1, description="Bootstrap resamples over examples.")
    confidence: float = Field(0.95, gt=0, lt=1)
    num_frames: int = Field(16, ge=2, description="Frames of each video the reviewer sees (evenly spaced).")
    lpips_weights: str | None = Field(None, description="LPIPS backbone + linear weights (a .pth); none here.")


class EvaluateConfig(RootConfig):
    FILE_KEYS = ("vlm", "protocol")  # other top-level keys (an ingest config's) are ignored: one file serves both

    vlm: VLMConfig = VLMConfig()
    protocol: ProtocolConfig = ProtocolConfig()


def load_evaluate_config(path: str | Path | None = None, overrides: dict[str, Any] | None = None) -> EvaluateConfig:
    """Defaults, then the YAML's ``vlm`` and ``protocol`` keys (other top-level keys, e.g. an ingest config's,
    are ignored so one file can serve both), then ``overrides``."""
    config = EvaluateConfig.load(path, overrides=overrides)
    if not config.vlm.enabled:
        raise ValueError("evaluate needs a reviewer: set vlm.backend/model (and vlm.base_url for openai)")
    return config
