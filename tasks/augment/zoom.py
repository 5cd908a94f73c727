"""zoom: the camera zooms in on a part of the frame away from the dynamic region, holds there for at least one
whole latent chunk with the event out of the view, and zooms back out (ReMind Appendix F.2: nodes from the peak crop
scale and the recovery frame, intrinsics updated to match the crop).

Each frame is one ``cv2.warpAffine`` with the crop affine ``A_t``; the degraded intrinsics are ``[A_t; 0 0 1] @ K_t``
(see ``tasks.augment.common``). The camera does not move: the degraded poses are the clean ones. Outside the
degraded chunks the scale is 1, so clean and degraded are the same frames.
"""
from __future__ import annotations

import numpy as np

from schemas.config_augment import ZoomConfig
from schemas.graph import InterruptionKind
from tasks.augment.common import (
    FamilyResult, NotApplicable, affine3, interval_frames, clamp_centre, crop_affine, draw_chunks, draw_float, draw_int,
    event_state, geometry_of, out_and_back, run_of, to_list, warp_affine_frames)
from tasks.augment.visibility import region_box, region_points, visibility_curve
from tasks.graph import chunked_graph
from tasks.records import Window

DIRECTIONS = {"left": (-1, 0), "right": (1, 0), "top": (0, -1), "bottom": (0, 1), "top-left": (-1, -1),
              "top-right": (1, -1), "bottom-left": (-1, 1), "bottom-right": (1, 1)}


def crop_affines(scales: np.ndarray, target: tuple[float, float], hw: tuple[int, int]) -> np.ndarray:
    """(N,2,3) affines: per-frame scale, centred on ``target`` as far as the window stays inside the frame."""
    return np.stack([crop_affine(float(s), clamp_centre(float(s), target, hw), hw) for s in scales])


def crop_boxes(affines: np.ndarray, hw: tuple[int, int]) -> list[list[float]]:
    """The source-frame window (continuous x0,y0,x1,y1, edges at -0.5 offsets) each affine shows."""
    h, w = hw
    s, tx, ty = affines[:, 0, 0], affines[:, 0, 2], affines[:, 1, 2]
    left, top = -(tx + 0.5) / s, -(ty + 0.5) / s
    return np.round(np.stack([left, top, left + w / s, top + h / s], 1), 4).tolist()


def hiding_target(box: tuple[float, float, float, float] | None, hw: tuple[int, int], scales: list[float],
                  rng: np.random.Generator) -> tuple[float, str, tuple[float, float]]:
    """(scale, direction, centre) of a crop at the smallest of ``scales`` that leaves ``box`` wholly outside."""
    h, w = hw
    if box is None:
        raise NotApplicable("zoom: no dynamic region to zoom away from")
    margin = 4.0
    for scale in scales:
        options = []
        for name, (dx, dy) in DIRECTIONS.items():
            cx, cy = clamp_centre(scale, (dx * 1e9 if dx else (w - 1) / 2, dy * 1e9 if dy else (h - 1) / 2), hw)
            x0, x1 = cx - w / (2 * scale), cx + w / (2 * scale)
            y0, y1 = cy - h / (2 * scale), cy + h / (2 * scale)
            apart = max(box[0] - margin - x1, x0 - box[2] - margin, box[1] - margin - y1, y0 - box[3] - margin)
            if apart > 0:
                options.append((name, (cx, cy)))
        if options:
            name, centre = options[int(rng.integers(len(options)))]
            return scale, name, centre
    raise NotApplicable(f"zoom: no crop up to scale {scales[-1]:.2f} leaves the dynamic region")


def apply_zoom(window: Window, config: ZoomConfig, rng: np.random.Generator, threshold: float = 0.05) -> FamilyResult:
    frames = window.frames
    n, h, w = frames.shape[:3]
    first, last = draw_chunks(rng, config.hidden_chunks)
    start, end, hidden_start, hidden_end = interval_frames(first, last)
    points, origin = region_points(window)
    if origin == "whole_frame":
        raise NotApplicable("zoom: the dynamic region is unknown, so no view is known to leave it")
    box = region_box(points, range(start, end + 1))
    peak = draw_float(rng, config.peak_scale)
    scale, direction, target = hiding_target(box, (h, w), list(np.arange(peak, config.max_scale + 1e-9, 0.1)), rng)
    ramp_in, ramp_out = draw_int(rng, config.ramp_frames), draw_int(rng, config.ramp_frames)
    zoom_in = hidden_start - ramp_in - int(rng.integers(0, hidden_start - start - ramp_in + 1))
    hold = (end - ramp_out - int(rng.integers(0, end - hidden_end - ramp_out + 1))) - (zoom_in + ramp_in) + 1
    weight = out_and_back(n, zoom_in, ramp_in, hold, ramp_out)
    scales = 1.0 + (scale - 1.0) * weight
    scales[weight >= 1.0] = scale
    affines = crop_affines(scales, target, (h, w))
    degraded = warp_affine_frames(frames, affines)
    vis = visibility_curve(points, (h, w), maps=affine3(affines))
    c2w, K = geometry_of(window)
    first_zoom, last_zoom = run_of(scales > 1.0, "zoomed frame")
    peak_start, peak_end = run_of(scales >= scale, "peak frame")
    events = {"zoom_start": first_zoom, "peak_start": peak_start, "peak_end": peak_end, "recovered": last_zoom + 1}
    graph = chunked_graph(InterruptionKind.zoom, first, last, vis, threshold, event_frames=events,
                          per_frame={"crop_scale": to_list(scales), **event_state(window)})
    params = {"peak_scale": round(float(scale), 5), "drawn_peak_scale": round(peak, 5), "direction": direction,
              "ramp_in_frames": ramp_in, "hold_frames": hold, "ramp_out_frames": ramp_out, "start_frame": zoom_in,
              "target": [round(target[0], 3), round(target[1], 3)], "region_source": origin,
              "crop_boxes": crop_boxes(affines, (h, w)), "first_chunk": first, "last_chunk": last}
    return FamilyResult(graph=graph, degraded=degraded, camera=None if c2w is None else c2w.astype(np.float32),
                        intrinsics=None if K is None else (affine3(affines) @ K).astype(np.float32), params=params)
