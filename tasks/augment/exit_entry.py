"""exit_entry (HM-World style): both clips are a crop that follows the subject; the degraded crop pans away until
the subject has left the view for at least one whole latent chunk, and pans back until it re-enters.

The subject is the synthetic generator's object (its masks and boxes), else a box tracked through the clip
(``tasks.augment.tracker``: OpenCV MIL, seeded from the motion mask), recorded per frame in ``meta.augment`` and
``per_frame.subject_x0..y1`` (degraded pixels, exclusive ends). Each frame is one ``cv2.warpAffine``; intrinsics are
``[A_t; 0 0 1] @ K_t`` for both clips (a crop changes the intrinsics, not the pose). Outside the interval the two crops
are the same, so the two clips are the same frames.
"""
from __future__ import annotations

import numpy as np

from schemas.config_augment import ExitEntryConfig
from schemas.graph import InterruptionKind
from tasks.augment.common import (
    FamilyResult, NotApplicable, affine3, clamp_centre, crop_affine, draw_chunks, draw_int, event_state, first_run,
    geometry_of, interval_frames, map_boxes, out_and_back, to_list, warp_affine_frames)
from tasks.augment.tracker import track_subject
from tasks.augment.visibility import region_points, visibility_curve
from tasks.graph import GraphError, chunked_graph
from tasks.records import Window

DIRECTIONS = ("left", "right", "up", "down")
SMOOTH = 9  # frames: the follow crop moves like an operator, not like the tracker's jitter


def map_pixel_boxes(boxes: np.ndarray, affines: np.ndarray) -> np.ndarray:
    """Exclusive-end pixel boxes through per-frame crop affines (continuous extent [x0 - 0.5, x1 - 0.5])."""
    return map_boxes(boxes - 0.5, affines) + 0.5


def subject_track(window: Window, config: ExitEntryConfig) -> tuple[np.ndarray, str]:
    """(N,4) subject boxes: the source's truth boxes, else the tracker's."""
    truth = window.truth
    if truth is not None and truth.object_box is not None and np.isfinite(truth.object_box).all(axis=1).any():
        return np.asarray(truth.object_box, np.float64), "truth_box"
    tracked = track_subject(window, config.tracker)
    if tracked is None:
        raise NotApplicable("exit_entry needs a subject: no truth box and no motion mask to seed a tracker")
    boxes, origin = tracked
    return boxes, f"{config.tracker}_tracker_from_{origin}"


def check_exit_entry(window: Window, config: ExitEntryConfig) -> str | None:
    if config.crop_scale <= 1.0:
        return "exit_entry needs crop_scale > 1 (a crop to leave)"
    truth = window.truth
    has_truth = truth is not None and truth.object_box is not None
    if not has_truth and window.dynamic_box is None and window.dynamic_mask is None \
            and getattr(window, "dynamic_masks", None) is None:
        return "exit_entry needs a subject (truth boxes or a motion mask to seed the tracker)"
    return None


def _fill(values: np.ndarray) -> np.ndarray:
    ok = np.isfinite(values)
    idx = np.arange(len(values))
    return np.interp(idx, idx[ok], values[ok])


def follow_centres(boxes: np.ndarray, scale: float, hw: tuple[int, int]) -> np.ndarray:
    """(N,2) crop centres on the subject, smoothed, kept inside the frame."""
    cx = _fill((boxes[:, 0] + boxes[:, 2] - 1) / 2.0)
    cy = _fill((boxes[:, 1] + boxes[:, 3] - 1) / 2.0)
    kernel = np.ones(SMOOTH) / SMOOTH
    pad = SMOOTH // 2
    cx = np.convolve(np.pad(cx, pad, mode="edge"), kernel, "valid")
    cy = np.convolve(np.pad(cy, pad, mode="edge"), kernel, "valid")
    return np.array([clamp_centre(scale, (float(x), float(y)), hw) for x, y in zip(cx, cy)])


def _try_layout(window: Window, config: ExitEntryConfig, rng: np.random.Generator, boxes: np.ndarray,
                points: list[np.ndarray], origin: str, follow: np.ndarray, clean_affines: np.ndarray, first: int,
                last: int, threshold: float, reasons: list[str]) -> FamilyResult | None:
    frames = window.frames
    n, h, w = frames.shape[:3]
    scale = config.crop_scale
    start, end, hidden_start, hidden_end = interval_frames(first, last)
    ramp_out, ramp_back = draw_int(rng, config.ramp_frames), draw_int(rng, config.ramp_frames)
    pan = hidden_start - ramp_out - int(rng.integers(0, hidden_start - start - ramp_out + 1))
    back_end = end - int(rng.integers(0, end - hidden_end - ramp_back + 1))
    weight = out_and_back(n, pan, ramp_out, back_end - ramp_back + 1 - (pan + ramp_out), ramp_back)
    # the roomiest side first: the subject leaves a crop parked at the far edge
    median = np.nanmedian(boxes[start:end + 1], axis=0)
    room = {"left": median[0], "right": w - median[2], "up": median[1], "down": h - median[3]}
    for direction in sorted(DIRECTIONS, key=lambda d: -room[d]):
        far = {"left": (-1e9, None), "right": (1e9, None), "up": (None, -1e9), "down": (None, 1e9)}[direction]
        away = np.array([clamp_centre(scale, (x if far[0] is None else far[0], y if far[1] is None else far[1]),
                                      (h, w)) for x, y in follow])
        centres = follow + (away - follow) * weight[:, None]
        centres[weight >= 1.0] = away[weight >= 1.0]
        affines = np.stack([crop_affine(scale, (float(x), float(y)), (h, w)) for x, y in centres])
        affines[weight == 0] = clean_affines[weight == 0]
        vis = visibility_curve(points, (h, w), maps=affine3(affines))
        hidden = first_run(vis <= threshold, at_or_after=pan)
        if hidden is None:
            reasons.append(f"chunks {first}-{last} {direction}: the subject never leaves")
            continue
        entry = hidden[1] + 1
        mapped = map_pixel_boxes(boxes, affines)
        per_frame = {"subject_visible": to_list((vis > threshold).astype(float)),
                     **{f"subject_{k}": to_list(mapped[:, i]) for i, k in enumerate(("x0", "y0", "x1", "y1"))},
                     **event_state(window)}
        try:
            graph = chunked_graph(InterruptionKind.exit_entry, first, last, vis, threshold, per_frame=per_frame,
                                  event_frames={"pan_start": pan, "exit_frame": hidden[0], "entry_frame": entry})
        except GraphError as err:
            reasons.append(f"chunks {first}-{last} {direction}: {err}")
            continue
        c2w, K = geometry_of(window)
        clean = warp_affine_frames(frames, clean_affines)
        degraded = clean.copy()
        moved = np.flatnonzero(weight > 0)
        degraded[moved] = warp_affine_frames(frames[moved], affines[moved])
        params = {"crop_scale": scale, "direction": direction, "subject_source": origin, "pan_frame": pan,
                  "ramp_out_frames": ramp_out, "ramp_back_frames": ramp_back, "hidden_frames": entry - hidden[0],
                  "subject_boxes": np.round(boxes, 1).tolist(), "crop_centres": np.round(centres, 2).tolist(),
                  "first_chunk": first, "last_chunk": last}
        return FamilyResult(graph=graph, degraded=degraded, camera=None if c2w is None else c2w.astype(np.float32),
                            intrinsics=None if K is None else (affine3(affines) @ K).astype(np.float32),
                            params=params, clean_affines=clean_affines, clean=clean)
    return None


def apply_exit_entry(window: Window, config: ExitEntryConfig, rng: np.random.Generator,
                     threshold: float = 0.05) -> FamilyResult:
    reason = check_exit_entry(window, config)
    if reason:
        raise NotApplicable(reason)
    frames = window.frames
    n, h, w = frames.shape[:3]
    scale = config.crop_scale
    boxes, origin = subject_track(window, config)
    points, _ = region_points(window) if origin == "truth_box" else region_points(window, boxes=boxes)
    follow = follow_centres(boxes, scale, (h, w))
    clean_affines = np.stack([crop_affine(scale, (float(x), float(y)), (h, w)) for x, y in follow])
    drawn = draw_chunks(rng, config.hidden_chunks)
    layouts = [drawn, *[(f, f + drawn[1] - drawn[0]) for f in range(1, 6) if f != drawn[0]
                        and f + drawn[1] - drawn[0] <= 5]]  # the drawn timing first, then the same length elsewhere
    reasons = []
    for first, last in layouts:
        found = _try_layout(window, config, rng, boxes, points, origin, follow, clean_affines, first, last, threshold,
                            reasons)
        if found is not None:
            return found
    raise NotApplicable("exit_entry: " + "; ".join(reasons))
