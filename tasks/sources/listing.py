"""What listing a source gives the run: its items, in a stable order, and the source's own figures."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tasks.records import SourceItem


@dataclass
class SourceListing:
    items: list[SourceItem]
    stats: dict[str, Any] = field(default_factory=dict)  # e.g. Pexels requests spent and budget left
