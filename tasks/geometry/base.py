"""The geometry estimate record and the backend protocol (the factory: tasks/geometry/backends.py)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np

from schemas.cameras import anchor_to_first, normalise_translations

@dataclass
class GeometryEstimate:
    """Per-frame cameras (and depth) of one 81-frame window, in the stored training conventions.

    ``camera_c2w`` is raw (not normalised): OpenCV axes, camera-to-world, frame 0 = identity. ``intrinsics`` are
    in pixels of the 480x832 frame. ``translation_centre`` / ``translation_scale`` are what
    ``schemas.cameras.normalise_translations`` gives on ``camera_c2w`` (the training side applies them).
    ``depth`` / ``depth_conf`` are (N,h,w) float32 at the backend's resolution (the packer resizes to 120x208),
    None for backends without depth. ``ok`` is False when a quality gate rejected the geometry (``reason`` says which).
    """

    camera_c2w: np.ndarray
    intrinsics: np.ndarray
    depth: np.ndarray | None
    depth_conf: np.ndarray | None
    backend: str
    quality: dict[str, float] = field(default_factory=dict)
    translation_centre: np.ndarray = field(default_factory=lambda: np.zeros(3))
    translation_scale: float = 1.0
    ok: bool = True
    reason: str | None = None

    @classmethod
    def from_raw(cls, c2w: np.ndarray, intrinsics: np.ndarray, backend: str, depth: np.ndarray | None = None,
                 depth_conf: np.ndarray | None = None, quality: dict[str, float] | None = None) -> GeometryEstimate:
        """Anchor ``c2w`` to frame 0, cast to float32 and record the per-clip translation normalisation."""
        anchored = anchor_to_first(c2w)
        _, centre, scale = normalise_translations(anchored)
        return cls(
            camera_c2w=anchored.astype(np.float32),
            intrinsics=np.asarray(intrinsics, np.float32),
            depth=None if depth is None else np.asarray(depth, np.float32),
            depth_conf=None if depth_conf is None else np.asarray(depth_conf, np.float32),
            backend=backend,
            quality=dict(quality or {}),
            translation_centre=centre.astype(np.float64),
            translation_scale=float(scale),
        )


@runtime_checkable
class GeometryBackend(Protocol):
    """Estimates cameras (and maybe depth) for the frames of one window."""

    name: str

    def estimate(self, frames: np.ndarray) -> GeometryEstimate:
        """``frames`` (N,480,832,3) uint8 RGB -> estimate with N poses."""
        ...
