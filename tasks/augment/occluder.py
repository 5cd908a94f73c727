"""occluder: a shape slides in from one side, covers the dynamic region (or the whole frame), holds, slides out.

Event frames come from the rendered occluder mask itself: ``enter``/``exit`` are the first/last frames with any
occluder pixel in the frame (so anchor and recovery chunks are pixel-identical to the clean clip),
``full_cover_start``/``full_cover_end`` the first/last frames covering every pixel of the region.
"""
from __future__ import annotations

import math

import numpy as np

from schemas.config import OccluderConfig
from schemas.graph import InterruptionKind
from tasks.augment.common import (
    FIRST_FRAME, LAST_FRAME, MAX_SPAN, FamilyResult, NotApplicable, draw_float, draw_int, dynamic_region,
    event_state, first_run, to_list)
from tasks.graph import build_graph
from tasks.records import Window

MARGIN_PX = 6.0  # the shape overhangs the region by this much, so full cover does not hinge on one pixel row
CELL_PX = 24  # texture checker size, in occluder-local pixels


def occluder_mask(hw: tuple[int, int], shape: str, centre: tuple[float, float],
                  half: tuple[float, float]) -> np.ndarray:
    """Binary mask of a rect/ellipse with half-sizes ``half`` at ``centre`` (pixel centres inside are covered)."""
    h, w = hw
    mask = np.zeros((h, w), bool)
    cx, cy = centre
    ax, ay = half
    xs0, xs1 = max(0, math.ceil(cx - ax)), min(w - 1, math.floor(cx + ax))
    ys0, ys1 = max(0, math.ceil(cy - ay)), min(h - 1, math.floor(cy + ay))
    if xs0 > xs1 or ys0 > ys1:
        return mask
    if shape == "rect":
        mask[ys0:ys1 + 1, xs0:xs1 + 1] = True
    else:
        xx = (np.arange(xs0, xs1 + 1) - cx) / ax
        yy = (np.arange(ys0, ys1 + 1) - cy) / ay
        mask[ys0:ys1 + 1, xs0:xs1 + 1] = yy[:, None] ** 2 + xx[None, :] ** 2 <= 1.0
    return mask


def _paint(frame: np.ndarray, mask: np.ndarray, centre: tuple[float, float], colours: np.ndarray,
           textured: bool) -> None:
    """Paint the mask's pixels in place, working on the mask's bounding box only."""
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    if not len(rows):
        return
    box = (slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1))
    where = mask[box][..., None]
    if textured:  # a checker fixed to the shape, so it visibly moves with it
        cy = np.floor((np.arange(rows[0], rows[-1] + 1) - centre[1]) / CELL_PX).astype(int)
        cx = np.floor((np.arange(cols[0], cols[-1] + 1) - centre[0]) / CELL_PX).astype(int)
        np.copyto(frame[box], colours[(cy[:, None] + cx[None, :]) & 1], where=where)
    else:
        np.copyto(frame[box], colours[0], where=where)


def occluder_path(num_frames: int, t0: int, x_start: float, x_stop: float, x_end: float, speed: float,
                  hold: int) -> np.ndarray:
    """Centre x per frame: moving at ``speed`` from ``x_start`` (frame ``t0``) to ``x_stop``, ``hold`` frames
    still, then on to ``x_end`` (clamped there)."""
    direction = 1.0 if x_end > x_start else -1.0
    t_stop = abs(x_stop - x_start) / speed
    tau = np.arange(num_frames, dtype=np.float64) - t0
    moving_in = x_start + direction * speed * np.clip(tau, 0.0, t_stop)
    moving_out = direction * speed * np.clip(tau - t_stop - hold, 0.0, None)
    x = moving_in + moving_out
    return np.clip(x, min(x_start, x_end), max(x_start, x_end))


def apply_occluder(window: Window, config: OccluderConfig, rng: np.random.Generator) -> FamilyResult:
    frames = window.frames
    n, h, w = frames.shape[:3]
    region = dynamic_region(window)
    cover = config.cover if config.cover != "either" else ("dynamic_region" if rng.random() < 0.5 else "full_frame")
    if cover == "full_frame" or region is None:
        region, cover = (0, 0, w, h), "full_frame"
    x0, y0, x1, y1 = region
    shape = str(rng.choice(config.shapes))
    textured = bool(config.textured and rng.random() < 0.5)
    colours = rng.integers(0, 256, size=(2, 3)).astype(np.uint8)
    speed = draw_float(rng, config.speed_px_per_frame)
    hold = draw_int(rng, config.hold_frames)
    from_left = bool(rng.random() < 0.5)

    rw, rh = x1 - x0, y1 - y0
    root2 = math.sqrt(2.0) if shape == "ellipse" else 1.0  # an ellipse through the region's corners
    half = (rw / 2.0 * root2 + MARGIN_PX, rh / 2.0 * root2 + MARGIN_PX)
    centre_y = (y0 + y1 - 1) / 2.0
    x_stop = (x0 + x1 - 1) / 2.0
    off_left, off_right = -1.0 - half[0], w + half[0]  # fully outside: no pixel centre covered
    x_start, x_end = (off_left, off_right) if from_left else (off_right, off_left)

    travel = abs(x_stop - x_start) + abs(x_end - x_stop)
    budget = MAX_SPAN - 1  # frames from the last clean frame before entry to the first clean frame after exit
    hold = max(1, min(hold, budget - 2))  # >= 1: the stop frame is then rendered
    if travel / speed + hold > budget:  # too slow for the window: keep the hold, speed up
        speed = travel / (budget - hold)
    span = math.ceil(travel / speed + hold)
    t0 = int(rng.integers(FIRST_FRAME - 1, LAST_FRAME + 1 - span + 1))
    xs = occluder_path(n, t0, x_start, x_stop, x_end, speed, hold)

    degraded = frames.copy()
    coverage = np.zeros(n)
    visible = np.zeros(n, bool)
    for t in range(n):
        mask = occluder_mask((h, w), shape, (float(xs[t]), centre_y), half)
        if not mask.any():
            continue
        visible[t] = True
        coverage[t] = float(mask[y0:y1, x0:x1].mean())
        _paint(degraded[t], mask, (float(xs[t]), centre_y), colours, textured)

    run = first_run(visible)
    full = first_run(coverage >= 1.0)
    if run is None or full is None:
        raise NotApplicable("the occluder path never fully covered the region")
    enter, exit_ = run
    events = {"enter": enter, "full_cover_start": full[0], "full_cover_end": full[1], "exit": exit_}
    graph = build_graph(
        InterruptionKind.occluder, enter, exit_, anchor_frames=[enter - 1], recovery_frames=[exit_ + 1],
        event_frames=events, per_frame={"occluder_coverage": to_list(coverage), **event_state(window)})
    params = {"shape": shape, "textured": textured, "colours": colours.tolist(), "cover": cover,
              "region": [x0, y0, x1, y1], "speed_px_per_frame": round(speed, 4), "hold_frames": hold,
              "side": "left" if from_left else "right", "half_size": [round(half[0], 3), round(half[1], 3)],
              "path_start_frame": t0}
    return FamilyResult(graph=graph, degraded=degraded, params=params)
