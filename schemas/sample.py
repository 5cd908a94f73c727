"""meta.json and the entries of one packed sample.

A sample in a shard is a group of tar members sharing a ``__key__``; only .mp4/.json/.npy/.txt entries exist
(nothing pickled). ``ENTRIES`` is the authoritative list the packer writes and the validator checks.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from schemas.constants import DEPTH_HEIGHT, DEPTH_WIDTH, FPS, HEIGHT, NUM_FRAMES, WIDTH
from schemas.graph import InterruptionKind
from schemas.version import SCHEMA_VERSION

KEY_PATTERN = r"^[a-z0-9][a-z0-9_-]*$"  # no dots: webdataset splits member names at the first dot


@dataclass(frozen=True)
class EntrySpec:
    """One tar member of a sample: its extension, whether it must exist, and for arrays dtype and shape."""

    ext: str
    required: bool
    dtype: str | None = None
    shape: tuple[int, ...] | None = None
    doc: str = ""


ENTRIES: dict[str, EntrySpec] = {spec.ext: spec for spec in (
    EntrySpec("mp4", True, doc=f"clean clip: {NUM_FRAMES} frames, {FPS} fps, {HEIGHT}x{WIDTH}, H.264"),
    EntrySpec("degraded.mp4", False, doc="the interrupted clip; present exactly when interruption.kind != none"),
    EntrySpec("graph.json", True, doc="FrameGraph"),
    EntrySpec("meta.json", True, doc="SampleMeta"),
    EntrySpec("camera.npy", False, "float32", (NUM_FRAMES, 4, 4),
              "camera-to-world, OpenCV axes (x right, y down, z forward), frame 0 = identity; raw scale"),
    EntrySpec("intrinsics.npy", False, "float32", (NUM_FRAMES, 3, 3), f"pixels of the {HEIGHT}x{WIDTH} frame"),
    EntrySpec("degraded_camera.npy", False, "float32", (NUM_FRAMES, 4, 4),
              "camera of degraded.mp4 when the interruption moves the view (camera_loop, zoom, exit_entry)"),
    EntrySpec("degraded_intrinsics.npy", False, "float32", (NUM_FRAMES, 3, 3), "intrinsics of degraded.mp4"),
    EntrySpec("depth.npy", False, "float16", (NUM_FRAMES, DEPTH_HEIGHT, DEPTH_WIDTH),
              f"z-depth at {DEPTH_HEIGHT}x{DEPTH_WIDTH} (a quarter of the frame), camera.npy's scale"),
    EntrySpec("depth_conf.npy", False, "float16", (NUM_FRAMES, DEPTH_HEIGHT, DEPTH_WIDTH), "depth confidence"),
    EntrySpec("txt", False, doc="caption: object, state variable, direction of change"),
)}


class _Meta(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SourceInfo(_Meta):
    kind: Literal["local", "synthetic", "pexels"]
    uri: str
    provenance: dict[str, Any] = Field(default_factory=dict, description="Per-source facts (file size, codec, ...).")


class Attribution(_Meta):
    """Required for every Pexels clip (Pexels terms): who made it and where it came from."""

    creator_name: str
    creator_url: str
    page_url: str
    video_id: str
    license: str
    license_url: str = ""
    retrieved_at: str
    query: str = ""
    event_type: str = ""


class GeometryMeta(_Meta):
    known: bool = False
    backend: Literal["ground_truth", "native", "classical", "da3", "none"] = "none"
    has_depth: bool = False
    translation_centre: list[float] | None = Field(
        None, description="Mean camera centre subtracted for the model-facing copy (schemas.cameras).")
    translation_scale: float | None = Field(None, description="Divisor of the centred translations.")
    quality: dict[str, float] = Field(default_factory=dict)


class SampleMeta(_Meta):
    schema_version: str = SCHEMA_VERSION
    key: str = Field(pattern=KEY_PATTERN)
    clip_id: str
    window: int = Field(ge=0)
    parent_key: str | None = Field(None, description="Sample this one was regenerated from.")
    parent_run: str | None = None
    source: SourceInfo
    license: str | None = None
    attribution: Attribution | None = None
    source_span_s: tuple[float, float]
    tags: list[str] = Field(default_factory=list, description="Taxonomy event ids.")
    event_group: str | None = None
    interruption: InterruptionKind = InterruptionKind.none
    caption: str = ""
    scores: dict[str, float] = Field(default_factory=dict, description="Filter scores (motion, cuts, VLM, ...).")
    vlm: dict[str, Any] | None = Field(None, description="schemas.vlm.VLMJudgement, when the VLM stage ran.")
    geometry: GeometryMeta = GeometryMeta()
    augment: dict[str, Any] = Field(default_factory=dict, description="Augmentation parameters drawn for this sample.")
    truth: dict[str, Any] | None = Field(None, description="Generator facts of a synthetic clip.")
    config_hash: str
    run_id: str
    created_by: str = "remind-curate"
