"""zoom: crop in to a peak scale and back (ramp, hold, ramp), centred on the dynamic region when known.

Each frame is one ``cv2.warpAffine`` with the crop affine ``A_t``; the degraded intrinsics are ``[A_t; 0 0 1] @ K_t``
(see ``tasks.augment.common``), so a 3D point projected with them lands where the warp put its pixel. The camera
does not move: the degraded poses are the clean ones.
"""
from __future__ import annotations

import numpy as np

from schemas.config import ZoomConfig
from schemas.graph import InterruptionKind
from tasks.augment.common import (
    MAX_SPAN, FamilyResult, NotApplicable, affine3, clamp_centre, crop_affine, draw_float, draw_int,
    dynamic_region, event_state, geometry_of, out_and_back, place_start, run_of, to_list, warp_affine_frames)
from tasks.graph import build_graph
from tasks.records import Window


def crop_affines(scales: np.ndarray, target: tuple[float, float], hw: tuple[int, int]) -> np.ndarray:
    """(N,2,3) affines: per-frame scale, centred on ``target`` as far as the window stays inside the frame."""
    return np.stack([crop_affine(float(s), clamp_centre(float(s), target, hw), hw) for s in scales])


def crop_boxes(affines: np.ndarray, hw: tuple[int, int]) -> list[list[float]]:
    """The source-frame window (continuous x0,y0,x1,y1, edges at -0.5 offsets) each affine shows."""
    h, w = hw
    s, tx, ty = affines[:, 0, 0], affines[:, 0, 2], affines[:, 1, 2]
    left, top = -(tx + 0.5) / s, -(ty + 0.5) / s
    return np.round(np.stack([left, top, left + w / s, top + h / s], 1), 4).tolist()


def apply_zoom(window: Window, config: ZoomConfig, rng: np.random.Generator) -> FamilyResult:
    frames = window.frames
    n, h, w = frames.shape[:3]
    peak = draw_float(rng, config.peak_scale)
    if peak <= 1.0:
        raise NotApplicable(f"zoom peak scale {peak} is not a zoom-in")
    ramp_in, ramp_out = draw_int(rng, config.ramp_frames), draw_int(rng, config.ramp_frames)
    hold = max(1, min(draw_int(rng, config.hold_frames), MAX_SPAN - ramp_in - ramp_out))
    start = place_start(rng, ramp_in + hold + ramp_out)
    weight = out_and_back(n, start, ramp_in, hold, ramp_out)
    scales = 1.0 + (peak - 1.0) * weight
    scales[weight >= 1.0] = peak  # exact peak value on hold frames, not 1 + (peak - 1) * 1.0 rounding

    region = dynamic_region(window)
    target = ((w - 1) / 2.0, (h - 1) / 2.0) if region is None else (
        (region[0] + region[2] - 1) / 2.0, (region[1] + region[3] - 1) / 2.0)
    affines = crop_affines(scales, target, (h, w))
    degraded = warp_affine_frames(frames, affines)

    c2w, K = geometry_of(window)
    intrinsics = None if K is None else (affine3(affines) @ K).astype(np.float32)
    camera = None if c2w is None else c2w.astype(np.float32)

    first, last = run_of(scales > 1.0, "zoomed frame")
    peak_start, peak_end = run_of(scales >= peak, "peak frame")
    recovered = last + 1
    events = {"peak_start": peak_start, "peak_end": peak_end, "recovered": recovered}
    graph = build_graph(
        InterruptionKind.zoom, first, last, anchor_frames=[first - 1], recovery_frames=[recovered],
        event_frames=events, per_frame={"crop_scale": to_list(scales), **event_state(window)})
    params = {"peak_scale": round(peak, 5), "ramp_in_frames": ramp_in, "hold_frames": hold,
              "ramp_out_frames": ramp_out, "start_frame": start,
              "target": [round(target[0], 3), round(target[1], 3)], "crop_boxes": crop_boxes(affines, (h, w))}
    return FamilyResult(graph=graph, degraded=degraded, camera=camera, intrinsics=intrinsics, params=params)
