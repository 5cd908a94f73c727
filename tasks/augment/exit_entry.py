"""exit_entry (HM-World style): a crop window that follows the subject, pans away until the subject has left the
view, and pans back until it re-enters.

The crop has a fixed ``crop_scale``; each frame is one ``cv2.warpAffine`` and the degraded intrinsics are
``[A_t; 0 0 1] @ K_t`` (a crop is an intrinsics change: the camera's pose is the clean one). Subject boxes are mapped
through the same affine (``per_frame.subject_x0..y1``, degraded pixels, exclusive ends like ``truth.object_box``);
the subject is visible while its box overlaps the view. The interruption is the hidden interval: ``exit_frame``
is its first frame, ``entry_frame`` the first frame with the subject back. The crop pans towards a side (the
roomiest first), then a corner; a subject too large to leave a crop of ``crop_scale`` makes the family not apply.
"""
from __future__ import annotations

import numpy as np

from schemas.config import ExitEntryConfig
from schemas.graph import InterruptionKind
from tasks.augment.common import (
    FIRST_FRAME, LAST_FRAME, MAX_SPAN, FamilyResult, NotApplicable, affine3, clamp_centre, crop_affine,
    event_state, first_run, geometry_of, map_boxes, out_and_back, subject_boxes, to_list, warp_affine_frames)
from tasks.graph import build_graph
from tasks.records import Window

SIDES = ("left", "right", "up", "down")
CORNERS = ("left-up", "left-down", "right-up", "right-down")  # tried after the sides
ATTEMPTS = 6  # timings tried per direction before giving up


def check_exit_entry(window: Window, config: ExitEntryConfig) -> str | None:
    if config.crop_scale <= 1.0:
        return "exit_entry needs crop_scale > 1 (a crop to leave)"
    boxes = subject_boxes(window)
    if boxes is None:
        return "exit_entry needs a tracked subject box (truth.object_box or window.dynamic_box)"
    h, w = window.frames.shape[1:3]
    finite = boxes[np.isfinite(boxes).all(axis=1)]
    bw, bh = np.median(finite[:, 2] - finite[:, 0]), np.median(finite[:, 3] - finite[:, 1])
    if bw > w - w / config.crop_scale and bh > h - h / config.crop_scale:
        return f"subject ({bw:.0f}x{bh:.0f} px) too large to leave a crop at scale {config.crop_scale}"
    return None


def _fill(values: np.ndarray) -> np.ndarray:
    """NaN entries replaced by linear interpolation of the finite ones (held at the ends)."""
    ok = np.isfinite(values)
    idx = np.arange(len(values))
    return np.interp(idx, idx[ok], values[ok])


def map_pixel_boxes(boxes: np.ndarray, affines: np.ndarray) -> np.ndarray:
    """Boxes with exclusive pixel-index ends (x1 = last column + 1) through per-frame crop affines, same convention:
    their continuous extent is [x0 - 0.5, x1 - 0.5], which maps as points."""
    return map_boxes(boxes - 0.5, affines) + 0.5


def _visible(boxes: np.ndarray, hw: tuple[int, int]) -> np.ndarray:
    """Whether each (exclusive-end) box overlaps the frame with positive area."""
    h, w = hw
    with np.errstate(invalid="ignore"):
        return (np.isfinite(boxes).all(axis=1) & (boxes[:, 2] > 0) & (boxes[:, 0] < w)
                & (boxes[:, 3] > 0) & (boxes[:, 1] < h))


def _centres(follow: np.ndarray, direction: str, weight: np.ndarray, scale: float,
             hw: tuple[int, int]) -> np.ndarray:
    """(N,2) crop centres: the follow path blended towards the frame edge named by ``direction``."""
    fx = {"left": -1e9, "right": 1e9}.get(direction.split("-")[0])
    fy = {"up": -1e9, "down": 1e9}.get(direction.split("-")[-1])
    away = np.array([clamp_centre(scale, (x if fx is None else fx, y if fy is None else fy), hw) for x, y in follow])
    out = follow + (away - follow) * weight[:, None]
    out[weight >= 1.0] = away[weight >= 1.0]
    return out


def plan_exit_entry(window: Window, config: ExitEntryConfig, rng: np.random.Generator) -> dict:
    """A crop path whose hidden interval is at least ``min_hidden_frames`` long and lies in frames 9..68."""
    reason = check_exit_entry(window, config)
    if reason:
        raise NotApplicable(reason)
    boxes = subject_boxes(window)
    assert boxes is not None
    n, h, w = window.frames.shape[:3]
    scale = config.crop_scale
    centre = np.stack([_fill((boxes[:, 0] + boxes[:, 2] - 1) / 2.0), _fill((boxes[:, 1] + boxes[:, 3] - 1) / 2.0)], 1)
    follow = np.array([clamp_centre(scale, (float(x), float(y)), (h, w)) for x, y in centre])
    # a crop moved to the left edge hides a subject far from that edge: try the roomiest side first, and
    # horizontal (a pan, as in HM-World) before vertical
    room = {"left": np.nanmedian(boxes[:, 0]), "right": w - np.nanmedian(boxes[:, 2]),
            "up": np.nanmedian(boxes[:, 1]) * 0.5, "down": (h - np.nanmedian(boxes[:, 3])) * 0.5}
    order = [*sorted(SIDES, key=lambda d: -room[d]), *CORNERS]
    for direction in order:
        for _ in range(ATTEMPTS):
            ramp = int(rng.integers(4, 10))
            hold = config.min_hidden_frames + int(rng.integers(0, 12))
            length = min(2 * ramp + hold, MAX_SPAN)
            hold = length - 2 * ramp
            start = int(rng.integers(FIRST_FRAME, LAST_FRAME - length + 2))
            weight = out_and_back(n, start, ramp, hold, ramp)
            centres = _centres(follow, direction, weight, scale, (h, w))
            affines = np.stack([crop_affine(scale, (float(x), float(y)), (h, w)) for x, y in centres])
            mapped = map_pixel_boxes(boxes, affines)
            visible = _visible(mapped, (h, w))
            run = first_run(~visible, at_or_after=start)
            if run is None:
                continue
            exit_, last = run
            entry = last + 1
            if (exit_ >= FIRST_FRAME and entry <= LAST_FRAME + 1 and visible[exit_ - 1] and entry < n
                    and visible[entry] and last - exit_ + 1 >= config.min_hidden_frames):
                return {"direction": direction, "start_frame": start, "ramp_frames": ramp, "hold_frames": hold,
                        "affines": affines, "centres": centres, "mapped": mapped, "visible": visible,
                        "exit": exit_, "entry": entry}
    raise NotApplicable("no crop path lets the subject leave and re-enter inside frames 9..68")


def apply_exit_entry(window: Window, config: ExitEntryConfig, rng: np.random.Generator) -> FamilyResult:
    plan = plan_exit_entry(window, config, rng)
    affines, mapped, visible = plan["affines"], plan["mapped"], plan["visible"]
    exit_, entry = plan["exit"], plan["entry"]
    c2w, K = geometry_of(window)
    per_frame = {"subject_visible": to_list(visible.astype(float)),
                 **{f"subject_{name}": to_list(mapped[:, i]) for i, name in enumerate(("x0", "y0", "x1", "y1"))},
                 **event_state(window)}
    graph = build_graph(InterruptionKind.exit_entry, exit_, entry - 1, anchor_frames=[exit_ - 1],
                        recovery_frames=[entry], event_frames={"exit_frame": exit_, "entry_frame": entry},
                        per_frame=per_frame)
    params = {"crop_scale": config.crop_scale, "direction": plan["direction"], "start_frame": plan["start_frame"],
              "ramp_frames": plan["ramp_frames"], "hold_frames": plan["hold_frames"],
              "hidden_frames": entry - exit_,
              "crop_centres": np.round(plan["centres"], 3).tolist()}
    return FamilyResult(graph=graph, degraded=warp_affine_frames(window.frames, affines),
                        camera=None if c2w is None else c2w.astype(np.float32),
                        intrinsics=None if K is None else (affine3(affines) @ K).astype(np.float32), params=params)
