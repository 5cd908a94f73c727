"""How much of the dynamic region a degraded frame shows: ``per_frame.event_visibility`` and the hidden interval.

The dynamic region of frame t is a set of points in the clean source frame's pixels: the synthetic generator's
object mask, else the motion stage's per-frame masks (``Window.dynamic_masks``), else its union mask
(``Window.dynamic_mask``), else a box (tracked per frame, or ``dynamic_box``). Each point goes through the same map
as the pixels (a 3x3 source -> degraded pixel map, identity for pixel-level kinds); its visibility is 1 when it
lands inside the degraded frame, times the frame's transmission there (1 - occluder alpha, the light gain). The
frame's visibility is the mean over the region's points. A frame whose region is empty (the subject out of the
source frame) borrows the nearest non-empty frame's region.
"""
from __future__ import annotations

import numpy as np

from schemas.constants import NUM_CHUNKS, chunk_frames
from tasks.records import Window

STEP = 4  # the region is sampled every STEP source pixels


def _mask_points(mask: np.ndarray, hw: tuple[int, int]) -> np.ndarray:
    """(M,2) source-pixel x,y of a (h,w) mask's set pixels (any resolution; pixel centres scaled)."""
    mh, mw = mask.shape
    step = max(1, round(STEP * mh / hw[0]))
    ys, xs = np.nonzero(mask[step // 2::step, step // 2::step])
    ys, xs = ys * step + step // 2, xs * step + step // 2
    sx, sy = hw[1] / mw, hw[0] / mh
    return np.stack([(xs + 0.5) * sx - 0.5, (ys + 0.5) * sy - 0.5], 1).astype(np.float64)


def _box_points(box: np.ndarray, hw: tuple[int, int]) -> np.ndarray:
    """Points of an exclusive-end x0,y0,x1,y1 box, clipped to the frame."""
    h, w = hw
    x0, y0 = max(0.0, float(box[0])), max(0.0, float(box[1]))
    x1, y1 = min(float(w), float(box[2])), min(float(h), float(box[3]))
    if not (np.isfinite([x0, y0, x1, y1]).all() and x1 > x0 and y1 > y0):
        return np.zeros((0, 2))
    xs = np.arange(np.ceil(x0), x1, STEP / 2.0)
    ys = np.arange(np.ceil(y0), y1, STEP / 2.0)
    if not len(xs) or not len(ys):
        xs, ys = np.array([(x0 + x1 - 1) / 2]), np.array([(y0 + y1 - 1) / 2])
    gx, gy = np.meshgrid(xs, ys)
    return np.stack([gx.ravel(), gy.ravel()], 1)


def region_points(window: Window, boxes: np.ndarray | None = None) -> tuple[list[np.ndarray], str]:
    """Per-frame (M_t,2) region points in source pixels and what they came from. ``boxes`` (N,4), when given,
    replaces masks (a tracked subject)."""
    n, h, w = window.frames.shape[:3]
    truth = window.truth
    dyn_masks = getattr(window, "dynamic_masks", None)
    if boxes is not None:
        points, origin = [_box_points(b, (h, w)) for b in boxes], "tracked_boxes"
    elif truth is not None and truth.object_mask is not None and len(truth.object_mask) == n:
        points, origin = [_mask_points(m, (h, w)) for m in truth.object_mask], "truth_mask"
    elif dyn_masks is not None and len(dyn_masks) == n:
        points, origin = [_mask_points(np.asarray(m, bool), (h, w)) for m in dyn_masks], "dynamic_masks"
    elif window.dynamic_mask is not None and np.asarray(window.dynamic_mask).any():
        pts = _mask_points(np.asarray(window.dynamic_mask, bool), (h, w))
        points, origin = [pts] * n, "dynamic_mask"
    elif truth is not None and truth.object_box is not None:
        points, origin = [_box_points(b, (h, w)) for b in np.asarray(truth.object_box, np.float64)], "truth_box"
    elif window.dynamic_box is not None:
        pts = _box_points(np.asarray(window.dynamic_box, np.float64), (h, w))
        points, origin = [pts] * n, "dynamic_box"
    else:  # nothing known moves: the whole frame is the region
        return [_box_points(np.array([0.0, 0.0, w, h]), (h, w))] * n, "whole_frame"
    return _borrow_empty(points), origin


def _borrow_empty(points: list[np.ndarray]) -> list[np.ndarray]:
    filled = [p for p in points if len(p)]
    if not filled:
        return points
    idx = np.array([i for i, p in enumerate(points) if len(p)])
    return [p if len(p) else points[int(idx[np.argmin(np.abs(idx - t))])] for t, p in enumerate(points)]


def region_box(points: list[np.ndarray], frames: range | None = None) -> tuple[float, float, float, float] | None:
    """Union box (inclusive pixel-centre extent) of the region's points over ``frames``."""
    sel = [points[t] for t in (frames if frames is not None else range(len(points))) if len(points[t])]
    if not sel:
        return None
    allp = np.concatenate(sel)
    return float(allp[:, 0].min()), float(allp[:, 1].min()), float(allp[:, 0].max()), float(allp[:, 1].max())


def frame_visibility(points: np.ndarray, hw: tuple[int, int], H: np.ndarray | None = None,
                     gain: np.ndarray | None = None) -> float:
    """Mean over the region's points of (inside the degraded frame) x (transmission there). 1.0 with no region."""
    if not len(points):
        return 1.0
    h, w = hw
    if H is None:
        uv = points
    else:
        hom = np.column_stack([points, np.ones(len(points))]) @ np.asarray(H, np.float64).T
        with np.errstate(divide="ignore", invalid="ignore"):
            uv = hom[:, :2] / hom[:, 2:3]
        uv[hom[:, 2] <= 1e-9] = np.nan
    inside = (uv[:, 0] >= -0.5) & (uv[:, 0] <= w - 0.5) & (uv[:, 1] >= -0.5) & (uv[:, 1] <= h - 0.5)
    if gain is None:
        return float(inside.mean())
    u = np.clip(np.rint(uv[inside, 0]), 0, w - 1).astype(int)
    v = np.clip(np.rint(uv[inside, 1]), 0, h - 1).astype(int)
    return float(np.asarray(gain, np.float64)[v, u].sum() / len(points))


def visibility_curve(points: list[np.ndarray], hw: tuple[int, int], maps: np.ndarray | None = None,
                     gains: list[np.ndarray | None] | None = None) -> np.ndarray:
    """(N,) visibility for per-frame maps (N,3,3) and transmissions (each (H,W) or None)."""
    return np.array([frame_visibility(points[t], hw, None if maps is None else maps[t],
                                      None if gains is None else gains[t]) for t in range(len(points))])


def hidden_chunks(visibility: np.ndarray, threshold: float, chunks: range | None = None) -> list[int]:
    """Chunks (within ``chunks``, default all but 0 and the last) every frame of which is at most ``threshold``."""
    out = []
    for c in chunks if chunks is not None else range(1, NUM_CHUNKS - 1):
        a, b = chunk_frames(c)
        if np.all(np.asarray(visibility[a:b + 1]) <= threshold):
            out.append(c)
    return out
