"""The typed records that flow between stages (NeMo-Curator style: Source -> Video -> Window -> Sample).

Each stage declares which record it takes and returns. Frames are decoded once per source and shared by
every stage that looks at pixels; only the packer encodes.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from schemas.cameras import anchor_to_first

CaptionSource = Literal["vlm", "dataset", "truth", "none"]


@dataclass(frozen=True)
class SourceItem:
    """One input: a file to decode, or a procedural clip to render. JSON-able except nothing; no secrets."""

    clip_id: str  # stable, filesystem-safe id, e.g. "local-3f2a9c0d1e22"
    source: str  # "local" | "synthetic" | "pexels" | "dl3dv" | "openvid" | "manifest"
    uri: str  # where it came from (never a signed URL or a key)
    path: str | None = None  # local file to decode; None for synthetic
    provenance: dict[str, Any] = field(default_factory=dict)  # license, attribution, caption, dataset_scores, ...
    # (the keys the meta and manifest read: tasks/sources/facts.py)
    error: str | None = None  # set when the item failed before decoding (e.g. a download failed)


@dataclass
class GroundTruth:
    """Exact per-frame truth a source knows (synthetic), aligned with the window's frames."""

    camera_c2w: np.ndarray  # (N,4,4) float32, OpenCV axes, frame 0 = identity
    intrinsics: np.ndarray  # (N,3,3) float32, pixels of the normalised frame
    depth: np.ndarray | None = None  # (N,H,W) float32
    state: np.ndarray | None = None  # (N,) float32 event state value
    object_mask: np.ndarray | None = None  # (N,H,W) bool, moving object's visible pixels
    object_box: np.ndarray | None = None  # (N,4) float32 x0,y0,x1,y1; NaN when not visible
    loop_return_frame: int | None = None
    event_type: str | None = None
    caption: str | None = None
    index: int | None = None  # the source's clip number (synthetic), for the kind mixture of a small run
    extra: dict[str, Any] = field(default_factory=dict)  # other facts of the source (JSON-able), written as they are

    def facts(self) -> dict[str, Any]:
        """``extra`` with the clip number: the facts a sample's meta and the window cache record."""
        return {**self.extra, **({} if self.index is None else {"index": self.index})}


@dataclass
class NativeGeometry:
    """Per output frame (16 fps timeline) cameras of a source; sliced per window by ``window_geometry``."""

    camera_c2w: np.ndarray  # (N,4,4) OpenCV camera-to-world in the source's world frame and units
    intrinsics: np.ndarray  # (N,3,3) pixels of the normalised frame
    depth: np.ndarray | None = None  # (N,H,W) float32 z-depth in the poses' units, when the source has it
    source_index: np.ndarray | None = None  # (N,) source frame shown by each output frame

    def window(self, start: int, num_frames: int) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """(c2w anchored to the window's first frame, intrinsics, depth) of frames [start, start+num_frames)."""
        stop = start + num_frames
        c2w = anchor_to_first(self.camera_c2w[start:stop]).astype(np.float32)
        depth = None if self.depth is None else self.depth[start:stop]
        return c2w, self.intrinsics[start:stop].astype(np.float32), depth


@dataclass(frozen=True)
class SourceFacts:
    """What decoding learned about a source (the report's and a reader's facts; no stage decides on them)."""

    source_fps: float
    duration_s: float
    codec: str
    source_size: tuple[int, int] | None = None  # (h, w) before normalising
    scale: float | None = None
    crop_xy: tuple[int, int] | None = None
    truncated: bool = False


@dataclass(frozen=True)
class CaptionChoice:
    """The caption a sample carries and where it comes from (``tasks.captions``)."""

    text: str  # "" when source is none
    source: CaptionSource
    note: str | None = None  # why there is no caption (source none)


@dataclass
class Window:
    """An 81-frame, 16 fps, 480x832 RGB window cut from one source, with everything learned about it so far."""

    item: SourceItem
    index: int  # window number within the source
    start_frame: int  # in the source's 16 fps timeline
    frames: np.ndarray  # (81,480,832,3) uint8 RGB
    span_s: tuple[float, float]  # source time span in seconds
    truth: GroundTruth | None = None
    camera_c2w: np.ndarray | None = None  # estimated or native geometry (raw, frame 0 = identity)
    intrinsics: np.ndarray | None = None
    depth: np.ndarray | None = None
    depth_conf: np.ndarray | None = None
    geometry: dict[str, Any] = field(default_factory=dict)  # backend, quality scores, translation scale
    dynamic_box: tuple[int, int, int, int] | None = None  # x0,y0,x1,y1 (pixels) of the moving region
    dynamic_mask: np.ndarray | None = None  # (h,w) bool at motion-analysis resolution
    dynamic_masks: np.ndarray | None = None  # (81,h,w) bool at motion-analysis resolution
    scores: dict[str, float] = field(default_factory=dict)  # filter scores
    tags: list[str] = field(default_factory=list)  # taxonomy ids
    vlm: dict[str, Any] | None = None
    caption: str = ""
    augmented: Any = None  # tasks.augment.Augmented once the graph stage ran
    thumbnail: np.ndarray | None = None  # a small RGB frame kept for the run report's audit (VLM-judged windows)
    caption_choice: CaptionChoice | None = None  # chosen once, at the write stage (tasks.captions.caption_of)
    # From a cache source (an earlier run's window): its clean clip as encoded, already in this run's window
    # cache (reused, not re-encoded), and the sample it was made from.
    clean_mp4: bytes | None = None
    parent_key: str | None = None
    parent_run: str | None = None

    @property
    def window_id(self) -> str:
        return f"{self.item.clip_id}-w{self.index:02d}"
