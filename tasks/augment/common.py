"""Shared pieces of the interruption families: seeding, geometry lookup, regions, crop affines, family results.

Pixel convention (as ``schemas.cameras``): integer coordinates are pixel centres, an image of width W spans
[-0.5, W - 0.5]. ``cv2.warpAffine`` / ``cv2.warpPerspective`` use the same convention, so a crop+resize done as
one ``warpAffine`` with the 2x3 matrix ``A`` maps a source point ``p`` to ``A @ [p, 1]`` and the intrinsics to
``K' = [A; 0 0 1] @ K`` exactly.
"""
from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np

from schemas.constants import NUM_CHUNKS, NUM_FRAMES, chunk_frames
from schemas.graph import FrameGraph
from tasks.records import Window



class NotApplicable(ValueError):
    """The family cannot produce a valid interruption for this window; the message says why."""


@dataclass
class FamilyResult:
    """What one family returns; ``tasks.augment.api`` wraps it into ``Augmented``."""

    graph: FrameGraph
    degraded: np.ndarray
    camera: np.ndarray | None = None
    intrinsics: np.ndarray | None = None
    params: dict[str, Any] = field(default_factory=dict)
    clean_affines: np.ndarray | None = None  # (N,2,3): the clean clip is the source through these crops
    clean: np.ndarray | None = None  # those clean frames (warp_affine_frames of the source), when computed


def rng_for(window_id: str, seed: int, kind: str) -> np.random.Generator:
    """A generator that depends only on (window, seed, family)."""
    digest = hashlib.sha256(f"{window_id}|{seed}|{kind}".encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "little"))


def draw_int(rng: np.random.Generator, bounds: Sequence[int]) -> int:
    lo, hi = sorted(int(b) for b in bounds)
    return int(rng.integers(lo, hi + 1))


def draw_float(rng: np.random.Generator, bounds: Sequence[float]) -> float:
    lo, hi = sorted(float(b) for b in bounds)
    return float(rng.uniform(lo, hi)) if hi > lo else lo


def draw_chunks(rng: np.random.Generator, hidden: Sequence[int]) -> tuple[int, int]:
    """(first, last) degraded chunk of a layout "transition chunk, ``k`` hidden chunks, transition chunk", with
    ``k`` drawn from ``hidden`` and clipped so chunk 0 stays an anchor and the last chunk the recovery."""
    k = int(np.clip(draw_int(rng, hidden), 1, NUM_CHUNKS - 4))
    first = int(rng.integers(1, NUM_CHUNKS - 1 - (k + 2) + 1))
    return first, first + k + 1


def chunk_span(first: int, last: int) -> tuple[int, int]:
    """First frame of chunk ``first`` and last frame of chunk ``last``."""
    return chunk_frames(first)[0], chunk_frames(last)[1]


def interval_frames(first: int, last: int) -> tuple[int, int, int, int]:
    """(start, end, hidden_start, hidden_end) frames of the degraded chunks ``first..last``: the whole interval,
    and the hidden chunks between its two transition chunks."""
    return (*chunk_span(first, last), *chunk_span(first + 1, last - 1))


def geometry_of(window: Window) -> tuple[np.ndarray | None, np.ndarray | None]:
    """(c2w (N,4,4), K (N,3,3)) float64: the window's geometry (what gets packed), else the source's truth."""
    c2w, K = window.camera_c2w, window.intrinsics
    if window.truth is not None:
        c2w = window.truth.camera_c2w if c2w is None else c2w
        K = window.truth.intrinsics if K is None else K
    return (None if c2w is None else np.asarray(c2w, np.float64),
            None if K is None else np.asarray(K, np.float64))


def event_state(window: Window) -> dict[str, list[float | None]]:
    """per_frame.event_state from the source's truth, when it has one."""
    truth = window.truth
    if truth is None or truth.state is None or len(truth.state) != NUM_FRAMES:
        return {}
    return {"event_state": [None if not np.isfinite(v) else float(v) for v in np.asarray(truth.state, np.float64)]}


def smoothstep(x: np.ndarray | float) -> np.ndarray:
    x = np.clip(np.asarray(x, np.float64), 0.0, 1.0)
    return x * x * (3.0 - 2.0 * x)


def out_and_back(num_frames: int, start: int, ramp_out: int, hold: int, ramp_back: int) -> np.ndarray:
    """Per-frame weight in [0, 1]: 0 before ``start``, eased up over ``ramp_out`` frames, 1 for ``hold`` frames,
    eased down over ``ramp_back`` frames, 0 after. Ramp frames are strictly between 0 and 1."""
    w = np.zeros(num_frames)
    for i in range(ramp_out):
        w[start + i] = smoothstep((i + 1) / (ramp_out + 1))
    w[start + ramp_out:start + ramp_out + hold] = 1.0
    for j in range(ramp_back):
        w[start + ramp_out + hold + j] = smoothstep(1.0 - (j + 1) / (ramp_back + 1))
    return w


def crop_affine(scale: float, centre: tuple[float, float], hw: tuple[int, int]) -> np.ndarray:
    """2x3 affine of "crop a (H/scale, W/scale) window centred on ``centre`` and resize it to (H, W)".

    The window's left edge is ``L = cx - W / (2 scale)`` (continuous coordinates); its edge maps to the output's
    edge -0.5, so ``u' = scale * (u - L) - 0.5`` (and likewise in y), the ``cv2.resize`` alignment.
    """
    h, w = hw
    left = centre[0] - w / (2.0 * scale)
    top = centre[1] - h / (2.0 * scale)
    return np.array([[scale, 0.0, -scale * left - 0.5], [0.0, scale, -scale * top - 0.5]])


def clamp_centre(scale: float, centre: tuple[float, float], hw: tuple[int, int]) -> tuple[float, float]:
    """The nearest crop centre whose (H/scale, W/scale) window stays inside the frame."""
    h, w = hw
    hx, hy = w / (2.0 * scale), h / (2.0 * scale)
    return (float(np.clip(centre[0], hx - 0.5, w - 0.5 - hx)), float(np.clip(centre[1], hy - 0.5, h - 0.5 - hy)))


def affine3(A: np.ndarray) -> np.ndarray:
    """(...,2,3) -> (...,3,3) with the row [0, 0, 1]."""
    out = np.zeros(A.shape[:-2] + (3, 3))
    out[..., :2, :] = A
    out[..., 2, 2] = 1.0
    return out


def warp_affine_frames(frames: np.ndarray, affines: np.ndarray) -> np.ndarray:
    """Each frame through its 2x3 affine (bilinear, border replicated: the windows stay inside the frame)."""
    h, w = frames.shape[1:3]
    out = np.empty_like(frames)
    for t, (frame, A) in enumerate(zip(frames, affines)):
        if np.allclose(A, [[1, 0, 0], [0, 1, 0]]):
            out[t] = frame
        else:
            cv2.warpAffine(frame, A, (w, h), dst=out[t], flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return out


def map_boxes(boxes: np.ndarray, affines: np.ndarray) -> np.ndarray:
    """Axis-aligned boxes (N,4) through per-frame scale+translate affines (N,2,3); NaN stays NaN."""
    out = np.empty_like(boxes)
    out[:, [0, 2]] = boxes[:, [0, 2]] * affines[:, 0, 0:1] + affines[:, 0, 2:3]
    out[:, [1, 3]] = boxes[:, [1, 3]] * affines[:, 1, 1:2] + affines[:, 1, 2:3]
    return out


def first_run(mask: np.ndarray, at_or_after: int = 0) -> tuple[int, int] | None:
    """(first, last) frame of the first run of True at or after ``at_or_after``."""
    idx = np.flatnonzero(mask[at_or_after:])
    if not len(idx):
        return None
    first = at_or_after + int(idx[0])
    rest = np.flatnonzero(~mask[first:])
    last = first + int(rest[0]) - 1 if len(rest) else len(mask) - 1
    return first, last


def run_of(mask: np.ndarray, what: str) -> tuple[int, int]:
    """``first_run`` that must exist; a family whose own schedule has no such run cannot apply."""
    run = first_run(mask)
    if run is None:
        raise NotApplicable(f"the schedule has no {what}")
    return run


def to_list(values: np.ndarray) -> list[float | None]:
    return [None if not np.isfinite(v) else float(v) for v in np.asarray(values, np.float64)]
