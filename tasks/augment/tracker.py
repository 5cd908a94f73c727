"""Subject tracking for exit/entry on sources without truth boxes: seeded from the motion stage's mask, tracked by
an adaptive normalised-cross-correlation template (``template``, the default: deterministic), pyramidal Lucas-Kanade
flow of the subject's moving corners (``flow``), or OpenCV's MIL tracker (``mil``: the only learning tracker
opencv-python-headless ships without model files; OpenCV seeds its sampler from the clock, so its tracks are not
reproducible and a rerun may differ).

Tracking runs at 208 px wide (a quarter of the frame); boxes come back in source pixels as x0,y0,x1,y1 with exclusive ends.
"""
from __future__ import annotations

import cv2
import numpy as np

from tasks.records import Window

TRACK_WIDTH = 208  # tracking resolution: frames are shrunk to this width (a quarter of 832), never enlarged


def seed_box(window: Window) -> tuple[np.ndarray, str] | None:
    """The subject's first-frame box (exclusive ends, source pixels) and where it came from: the largest
    connected component of the first per-frame motion mask, else of the union mask, else the motion box."""
    h, w = window.frames.shape[1:3]
    masks = getattr(window, "dynamic_masks", None)
    candidates = []
    if masks is not None and len(masks):
        candidates.append((next((m for m in masks if np.asarray(m).any()), None), "dynamic_masks"))
    candidates.append((window.dynamic_mask, "dynamic_mask"))
    for mask, origin in candidates:
        if mask is None or not np.asarray(mask).any():
            continue
        m = np.asarray(mask, np.uint8)
        count, _, stats, _ = cv2.connectedComponentsWithStats(m, connectivity=8)
        best = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
        x, y, bw, bh = stats[best, :4]
        sx, sy = w / m.shape[1], h / m.shape[0]
        return np.array([x * sx, y * sy, (x + bw) * sx, (y + bh) * sy], np.float64), origin
    if window.dynamic_box is not None:
        return np.asarray(window.dynamic_box, np.float64), "dynamic_box"
    return None


def _mil(small: np.ndarray, box: np.ndarray, stride: int = 2) -> np.ndarray:
    """MIL on every ``stride``-th frame (its search window is wide enough), linearly interpolated between."""
    tracker = cv2.TrackerMIL_create()
    x0, y0, x1, y1 = box
    tracker.init(small[0], (int(x0), int(y0), max(2, int(x1 - x0)), max(2, int(y1 - y0))))
    out = np.full((len(small), 4), np.nan)
    out[0] = box
    steps = list(range(stride, len(small), stride))
    if steps[-1] != len(small) - 1:
        steps.append(len(small) - 1)
    for t in steps:
        ok, (x, y, bw, bh) = tracker.update(small[t])
        if ok:
            out[t] = [x, y, x + bw, y + bh]
    known = np.flatnonzero(np.isfinite(out).all(axis=1))
    for k in range(4):
        out[:, k] = np.interp(np.arange(len(small)), known, out[known, k])
    return out


def _template(small: np.ndarray, box: np.ndarray, learn: float = 0.15) -> np.ndarray:
    """Normalised cross-correlation of an adaptive template (the seed patch, updated with each match) in a search
    window around the last position: deterministic, and robust to a subject that rotates or rolls slowly."""
    h, w = small.shape[1:3]
    x0, y0, x1, y1 = (int(round(v)) for v in box)
    x0, y0 = max(0, x0), max(0, y0)
    x1, y1 = min(w, max(x0 + 4, x1)), min(h, max(y0 + 4, y1))
    grey = small.astype(np.float32).mean(axis=-1)
    template = grey[0, y0:y1, x0:x1].copy()
    th, tw = template.shape
    out = np.full((len(small), 4), np.nan)
    out[0] = [x0, y0, x1, y1]
    px, py = float(x0), float(y0)
    reach = max(8, (tw + th) // 3)
    for t in range(1, len(small)):
        sx0, sy0 = int(max(0, px - reach)), int(max(0, py - reach))
        sx1, sy1 = int(min(w, px + tw + reach)), int(min(h, py + th + reach))
        search = grey[t, sy0:sy1, sx0:sx1]
        if search.shape[0] < th or search.shape[1] < tw:
            out[t] = out[t - 1]
            continue
        score = cv2.matchTemplate(search, template, cv2.TM_CCOEFF_NORMED)
        _, best, _, (bx, by) = cv2.minMaxLoc(score)
        if best > 0.3:
            px, py = float(sx0 + bx), float(sy0 + by)
            patch = grey[t, int(py):int(py) + th, int(px):int(px) + tw]
            template = (1.0 - learn) * template + learn * patch
        out[t] = [px, py, px + tw, py + th]
    return out


def _flow(small: np.ndarray, box: np.ndarray) -> np.ndarray:
    grey = [cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in small]
    out = np.full((len(small), 4), np.nan)
    out[0] = box
    cur = box.copy()
    for t in range(1, len(small)):
        x0, y0, x1, y1 = (int(round(v)) for v in cur)
        roi = np.zeros_like(grey[t - 1])
        roi[max(0, y0):max(0, y1), max(0, x0):max(0, x1)] = 255
        pts = cv2.goodFeaturesToTrack(grey[t - 1], 60, 0.01, 4, mask=roi)
        if pts is None:
            out[t] = cur
            continue
        nxt, status, _ = cv2.calcOpticalFlowPyrLK(grey[t - 1], grey[t], pts, None)
        good = status.ravel() == 1
        moves = np.linalg.norm((nxt - pts).reshape(-1, 2), axis=1) > 0.3  # the subject, not the background
        if (good & moves).sum() >= 3:
            good &= moves
        if good.sum() >= 3:
            shift = np.median((nxt - pts)[good].reshape(-1, 2), axis=0)
            cur = cur + np.array([shift[0], shift[1], shift[0], shift[1]])
        out[t] = cur
    return out


def track_subject(window: Window, method: str = "template") -> tuple[np.ndarray, str] | None:
    """(N,4) per-frame subject boxes (NaN where lost) in source pixels, and the seed's origin; None without a seed."""
    seeded = seed_box(window)
    if seeded is None:
        return None
    box, origin = seeded
    frames = window.frames
    h, w = frames.shape[1:3]
    scale = min(1.0, TRACK_WIDTH / w)
    small = np.stack([cv2.resize(f, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA)
                      for f in frames])
    boxes = {"mil": _mil, "flow": _flow, "template": _template}[method](small, box * scale) / scale
    boxes[:, [0, 2]] = np.clip(boxes[:, [0, 2]], 0, w)
    boxes[:, [1, 3]] = np.clip(boxes[:, [1, 3]], 0, h)
    return boxes, origin
