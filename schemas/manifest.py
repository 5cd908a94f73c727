"""manifest.parquet: one row per candidate window, and one per input that yielded no window."""
from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Status = Literal["accepted", "rejected", "failed"]


class ManifestRow(BaseModel):
    model_config = ConfigDict(extra="forbid")

    run_id: str
    clip_id: str
    window: int | None = Field(None, description="None when the input yielded no window.")
    source: str
    uri: str
    status: Status
    reason: str | None = Field(None, description="Why a window was rejected or failed (a stable code).")
    error: str | None = Field(None, description="The error message of a failure.")
    shard: str | None = None
    key: str | None = None
    parent_key: str | None = None
    event_type: str | None = None
    event_group: str | None = None
    interruption: str | None = None
    tags: list[str] = Field(default_factory=list)
    scores: dict[str, float] = Field(default_factory=dict)
    source_start_s: float | None = None
    source_end_s: float | None = None
    geometry_backend: str | None = None
    vlm_decision: str | None = None
    vlm_reason: str | None = None
    caption: str | None = None
    caption_source: str | None = Field(None, description="vlm | truth | dataset | none (tasks/captions.py)")
    license: str | None = None
    attribution: str | None = Field(None, description="Credit line (Pexels: the creator's name and page).")
    dataset_aesthetic: float | None = Field(None, description="The source dataset's own scores (OpenVid-1M).")
    dataset_motion: float | None = None
    dataset_temporal_consistency: float | None = None
    dataset_camera_motion: str | None = None
    config_hash: str
    seconds: float = Field(0.0, description="Wall time spent on this row's window.")
