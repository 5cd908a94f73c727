"""meta.json and the entries of one packed sample.

A sample in a shard is a group of tar members sharing a ``__key__``; only .mp4/.json/.npy/.txt entries exist
(nothing pickled). ``ENTRIES`` is the authoritative list the packer writes and the validator checks.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, SerializerFunctionWrapHandler, model_serializer

from schemas.constants import DEPTH_HEIGHT, DEPTH_WIDTH, FPS, HEIGHT, NUM_FRAMES, WIDTH
from schemas.graph import InterruptionKind
from schemas.version import SCHEMA_VERSION
from schemas.vlm import VLMJudgement

KEY_PATTERN = r"^[a-z0-9][a-z0-9_-]*$"  # no dots: webdataset splits member names at the first dot


@dataclass(frozen=True)
class EntrySpec:
    """One tar member of a sample: its extension, whether it must exist, and for arrays dtype and shape."""

    ext: str
    required: bool
    dtype: str | None = None
    shape: tuple[int, ...] | None = None
    doc: str = ""
    max_bytes: int = 0  # a member larger than this is reported and never read; 0: derived from dtype and shape

    def __post_init__(self) -> None:
        if not self.max_bytes:
            if self.dtype is None or self.shape is None:
                raise ValueError(f"entry {self.ext} needs max_bytes")
            size = int(np.prod(self.shape)) * np.dtype(self.dtype).itemsize
            object.__setattr__(self, "max_bytes", 4 * size + (64 << 10))  # room for a wrong dtype to be named


MP4_MAX_BYTES = 256 << 20  # an 81-frame 480x832 H.264 clip is 0.1-20 MiB
JSON_MAX_BYTES = 8 << 20
UNKNOWN_MAX_BYTES = 256 << 20  # entries of a newer minor version this reader does not know


ENTRIES: dict[str, EntrySpec] = {spec.ext: spec for spec in (
    EntrySpec("mp4", True, doc=f"clean clip: {NUM_FRAMES} frames, {FPS} fps, {HEIGHT}x{WIDTH}, H.264",
              max_bytes=MP4_MAX_BYTES),
    EntrySpec("degraded.mp4", False, doc="the interrupted clip; present exactly when interruption.kind != none",
              max_bytes=MP4_MAX_BYTES),
    EntrySpec("graph.json", True, doc="FrameGraph", max_bytes=JSON_MAX_BYTES),
    EntrySpec("meta.json", True, doc="SampleMeta", max_bytes=JSON_MAX_BYTES),
    EntrySpec("checksums.json", False, doc='{"sha256": {entry: hex digest}} of every other member of the sample; '
              "required from schema 1.1.0", max_bytes=64 << 10),
    EntrySpec("camera.npy", False, "float32", (NUM_FRAMES, 4, 4),
              "camera-to-world, OpenCV axes (x right, y down, z forward), frame 0 = identity; raw scale"),
    EntrySpec("intrinsics.npy", False, "float32", (NUM_FRAMES, 3, 3), f"pixels of the {HEIGHT}x{WIDTH} frame"),
    EntrySpec("degraded_camera.npy", False, "float32", (NUM_FRAMES, 4, 4),
              "camera of degraded.mp4 when the interruption moves the view (camera_loop, zoom, exit_entry)"),
    EntrySpec("degraded_intrinsics.npy", False, "float32", (NUM_FRAMES, 3, 3), "intrinsics of degraded.mp4"),
    EntrySpec("depth.npy", False, "float16", (NUM_FRAMES, DEPTH_HEIGHT, DEPTH_WIDTH),
              f"z-depth at {DEPTH_HEIGHT}x{DEPTH_WIDTH} (a quarter of the frame), camera.npy's scale"),
    EntrySpec("depth_conf.npy", False, "float16", (NUM_FRAMES, DEPTH_HEIGHT, DEPTH_WIDTH), "depth confidence"),
    EntrySpec("txt", False, doc="caption: object, state variable, direction of change", max_bytes=1 << 20),
    EntrySpec("degraded.txt", False, doc="what the interruption does, in words from its parameters (an I2V "
              "evaluation's instruction); present exactly when degraded.mp4 is", max_bytes=1 << 16),
)}


class _Meta(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SourceInfo(_Meta):
    kind: Literal["local", "synthetic", "pexels", "dl3dv", "openvid", "manifest"]
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
    reason: str | None = Field(None, description="Why cameras are unknown when an estimator ran and failed "
                               "(e.g. geometry_low_confidence); the window was kept without them.")
    excluded_interruptions: list[str] = Field(default_factory=list, description="Interruption families left out "
                                              "of this window's draw because they need cameras.")


class _Open(BaseModel):
    """An open set of facts: the declared fields are typed, others (family- or generator-specific) are kept.

    Serialised without the declared fields that were never set, so the JSON holds what the writer recorded."""

    model_config = ConfigDict(extra="allow")

    @model_serializer(mode="wrap")
    def _only_recorded(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data = handler(self)
        unset = set(type(self).model_fields) - self.model_fields_set
        return {k: v for k, v in data.items() if not (k in unset and v is None)}


class Fallback(_Meta):
    from_: str = Field(alias="from", description="The interruption kind drawn first.")
    reasons: dict[str, str] = Field(default_factory=dict, description="Why each earlier candidate did not apply.")

    model_config = ConfigDict(extra="forbid", populate_by_name=True, serialize_by_alias=True)


class AugmentMeta(_Open):
    """What the interruption family drew (tasks/augment). Family-specific parameters (occluder shape and path,
    zoom boxes, light schedule, ...) are kept beside the typed ones."""

    kind: InterruptionKind = InterruptionKind.none
    fallback_from: str | None = Field(None, description="The kind drawn first when another one was applied.")
    fallback: Fallback | None = None
    mode: str | None = Field(None, description="camera_loop: native, rotation or crop.")
    start_frame: int | None = Field(None, ge=0)
    hold_frames: int | None = Field(None, ge=0)
    crop_scale: float | None = Field(None, gt=0)


class TruthMeta(_Open):
    """Generator facts of a synthetic clip; scene-specific scalars (wall depth, floor height, ...) are kept too."""

    event_type: str | None = None
    loop_return_frame: int | None = Field(None, ge=0)
    family: str | None = None
    trajectory: str | None = None
    seed: int | None = None
    index: int | None = Field(None, ge=0)
    state_variable: str | None = None


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
    attribution_text: str | None = Field(None, description="Credit line of a non-Pexels source (dataset citation, "
                                         "a manifest row's attribution).")
    dataset_scores: dict[str, float] = Field(default_factory=dict, description="Scores the source dataset ships "
                                             "(OpenVid-1M: aesthetic, motion, temporal_consistency).")
    dataset_labels: dict[str, str] = Field(default_factory=dict, description="Labels the source dataset ships "
                                           "(OpenVid-1M: camera_motion).")
    source_span_s: tuple[float, float]
    tags: list[str] = Field(default_factory=list, description="Taxonomy event ids.")
    event_group: str | None = None
    interruption: InterruptionKind = InterruptionKind.none
    caption: str = ""
    caption_source: Literal["vlm", "dataset", "truth", "none"] | None = Field(
        None, description="Where the caption (txt) comes from: the VLM, the source dataset, synthetic ground truth, "
        "or none (then no txt member; caption_note says why). Null in samples written before it was recorded.")
    caption_note: str | None = Field(None, description="Why there is no caption (caption_source none).")
    scores: dict[str, float] = Field(default_factory=dict, description="Filter scores (motion, cuts, VLM, ...).")
    vlm: VLMJudgement | None = Field(None, description="The VLM judge's recorded judgement, when the stage ran.")
    geometry: GeometryMeta = GeometryMeta()
    augment: AugmentMeta = Field(default_factory=lambda: AugmentMeta(),
                                 description="Augmentation parameters drawn for this sample.")
    truth: TruthMeta | None = Field(None, description="Generator facts of a synthetic clip.")
    config_hash: str
    run_id: str
    created_by: str = "remind-curate"
