"""camera_loop: the view looks away from the dynamic region and returns (ReMind Appendix F.2: the memory anchor
is the initial view, the recovery node the later frame whose pose returns nearest to it).

Three modes, in order of preference:

- ``native``: the clip already loops (``truth.loop_return_frame`` is set, or the poses leave and come back). The
  degraded clip is a copy of the clean one and the nodes come from the native poses: no warp can add anything.
- ``rotation`` (intrinsics known): a virtual camera rotating about the real one by a yaw ``psi_t``. Pixels map by the
  rotation homography ``H_t = K' R_y(psi_t)^T K_t^-1`` (clean pixel -> virtual pixel), with ``K' = Z K_t`` a centred
  zoom by ``crop_scale`` that gives the margin to turn into. ``degraded_camera = c2w_t @ [R_y(psi_t) | 0]``.
- ``crop`` (no intrinsics): a zoomed crop window panning sideways and back; no camera or intrinsics claimed.

Virtual loops derive their nodes from the look-away angle ``|psi_t - psi_0|`` (the pixel shift in ``crop`` mode),
which equals the pose distance to the degraded frame 0 when the real camera is still; the pose distance itself
is recorded as ``per_frame.pose_distance_deg``.
"""
from __future__ import annotations

import math

import cv2
import numpy as np

from schemas.cameras import rotation_angle_deg
from schemas.config import CameraLoopConfig
from schemas.graph import FrameGraph, InterruptionKind
from tasks.augment.common import (
    FIRST_FRAME, LAST_FRAME, FamilyResult, NotApplicable, affine3, clamp_centre, crop_affine, draw_int,
    dynamic_region, event_state, geometry_of, out_and_back, place_start, to_list, warp_affine_frames)
from tasks.graph import build_graph
from tasks.records import Window

NATIVE_MIN_DEG = 5.0  # a native trajectory must turn at least this far to count as a loop
NATIVE_RETURN_FRACTION = 0.15  # ... and come back to within this fraction of its peak angle
MIN_PAN_FRACTION = 0.03  # a virtual loop must shift the view by at least this fraction of the width


def rot_y(psi: float) -> np.ndarray:
    """Yaw about the camera's y axis (OpenCV: y down), positive turns the view right."""
    c, s = math.cos(psi), math.sin(psi)
    return np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])


def pose_distance_deg(c2w: np.ndarray) -> np.ndarray:
    """Rotation angle of each pose to the pose of frame 0, degrees."""
    rots = np.asarray(c2w, np.float64)[:, :3, :3]
    return np.asarray(rotation_angle_deg(np.broadcast_to(rots[0], rots.shape), rots), np.float64)


def loop_nodes(curve: np.ndarray, start_tol: float, return_tol: float) -> tuple[int, int, int] | None:
    """(first away frame, farthest frame, return frame) of a distance-to-initial-view curve.

    The return frame is the argmin of the curve after the farthest frame (the first frame within ``return_tol``
    of that minimum, so flat stretches resolve to their start); the first away frame is the first exceeding
    ``start_tol``.
    """
    far = int(np.argmax(curve))
    if far >= len(curve) - 1 or curve[far] <= start_tol:
        return None
    after = curve[far + 1:]
    ret = far + 1 + int(np.flatnonzero(after <= after.min() + return_tol)[0])
    start = int(np.flatnonzero(curve > start_tol)[0])
    return start, far, ret


def native_loop(window: Window) -> tuple[int, int, int] | None:
    """Nodes of the clip's own loop when its poses leave the initial view and return, inside frames 9..69."""
    c2w, _ = geometry_of(window)
    if c2w is None:
        return None
    dist = pose_distance_deg(c2w)
    peak = float(dist.max())
    declared = window.truth is not None and window.truth.loop_return_frame is not None
    if peak < NATIVE_MIN_DEG and not declared:
        return None
    nodes = loop_nodes(dist, start_tol=max(0.05, 0.01 * peak), return_tol=1e-3 + 0.002 * peak)
    if nodes is None:
        return None
    start, _, ret = nodes
    returned = float(dist[ret]) <= NATIVE_RETURN_FRACTION * peak
    fits = start >= FIRST_FRAME and ret - 1 <= LAST_FRAME and ret > start
    return nodes if returned and fits else None


def check_camera_loop(window: Window, config: CameraLoopConfig) -> str | None:
    if native_loop(window) is not None or config.crop_scale > 1.0:
        return None
    return "camera_loop needs a native loop or crop_scale > 1 (margin to pan into)"


def _inside(K: np.ndarray, Kv: np.ndarray, psi: float, hw: tuple[int, int]) -> bool:
    """Whether the whole virtual view at yaw ``psi`` samples inside the source frame, for every frame's K."""
    h, w = hw
    xs, ys = np.linspace(-0.5, w - 0.5, 9), np.linspace(-0.5, h - 0.5, 7)
    border = np.concatenate([np.stack([xs, np.full_like(xs, -0.5)], 1), np.stack([xs, np.full_like(xs, h - 0.5)], 1),
                             np.stack([np.full_like(ys, -0.5), ys], 1), np.stack([np.full_like(ys, w - 0.5), ys], 1)])
    pts = np.vstack([border.T, np.ones(len(border))])
    src = K @ rot_y(psi) @ np.linalg.inv(Kv) @ pts  # (N,3,M): virtual pixel -> clean pixel
    if (src[:, 2] <= 1e-9).any():
        return False
    u, v = src[:, 0] / src[:, 2], src[:, 1] / src[:, 2]
    eps = 1e-6
    return bool((u >= -0.5 - eps).all() and (u <= w - 0.5 + eps).all()
                and (v >= -0.5 - eps).all() and (v <= h - 0.5 + eps).all())


def yaw_limit(K: np.ndarray, Kv: np.ndarray, hw: tuple[int, int], sign: float) -> float:
    """Largest |psi| (radians) in direction ``sign`` keeping the virtual view inside the frame (bisection)."""
    lo, hi = 0.0, math.pi / 3
    for _ in range(40):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if _inside(K, Kv, sign * mid, hw) else (lo, mid)
    return lo


def _schedule(rng: np.random.Generator, config: CameraLoopConfig, n: int) -> tuple[np.ndarray, dict[str, int]]:
    length = max(3, draw_int(rng, config.away_frames))
    ramp = max(1, length // 3)
    hold = length - 2 * ramp
    start = place_start(rng, length)
    return out_and_back(n, start, ramp, hold, ramp), {"start_frame": start, "ramp_frames": ramp, "hold_frames": hold}


def _graph(window: Window, nodes: tuple[int, int, int], per_frame: dict[str, list[float | None]]) -> FrameGraph:
    start, far, ret = nodes
    return build_graph(InterruptionKind.camera_loop, start, ret - 1, anchor_frames=[0], recovery_frames=[ret],
                       event_frames={"away_start": start, "farthest": far, "return": ret},
                       per_frame={**per_frame, **event_state(window)})


def apply_camera_loop(window: Window, config: CameraLoopConfig, rng: np.random.Generator) -> FamilyResult:
    frames = window.frames
    n, h, w = frames.shape[:3]
    c2w, K = geometry_of(window)
    native = native_loop(window)
    if native is not None:
        assert c2w is not None
        dist = pose_distance_deg(c2w)
        graph = _graph(window, native, {"pose_distance_deg": to_list(dist)})
        params = {"mode": "native", "peak_deg": round(float(dist.max()), 4),
                  "return_error_deg": round(float(dist[native[2]]), 4)}
        return FamilyResult(graph=graph, degraded=frames.copy(), camera=c2w.astype(np.float32),
                            intrinsics=None if K is None else K.astype(np.float32), params=params)
    if config.crop_scale <= 1.0:
        raise NotApplicable("camera_loop needs crop_scale > 1 without a native loop")
    region = dynamic_region(window)
    weight, timing = _schedule(rng, config, n)
    if K is None:
        return _crop_loop(window, config, rng, region, weight, timing)

    zoom = affine3(crop_affine(config.crop_scale, ((w - 1) / 2.0, (h - 1) / 2.0), (h, w)))
    Kv = zoom @ K
    limits = {1.0: yaw_limit(K, Kv, (h, w), 1.0), -1.0: yaw_limit(K, Kv, (h, w), -1.0)}
    if region is None:
        psi0, away = 0.0, float(rng.choice([-1.0, 1.0]))
    else:
        rx = (region[0] + region[2] - 1) / 2.0
        psi0 = math.atan2(rx - K[0, 0, 2], K[0, 0, 0])
        away = -1.0 if psi0 >= 0 else 1.0
    psi0 = float(np.clip(psi0, -limits[-1.0], limits[1.0]))
    cap = config.max_pan_fraction * w / K[0, 0, 0]  # the pan's reach in tan(yaw), from the frame-width fraction
    tan_far = away * math.tan(limits[away])
    psi1 = math.atan(math.tan(psi0) + float(np.clip(tan_far - math.tan(psi0), -cap, cap)))
    if abs(math.tan(psi1) - math.tan(psi0)) * K[0, 0, 0] < MIN_PAN_FRACTION * w:
        raise NotApplicable("camera_loop: no margin to look away within the frame")
    psi = psi0 + (psi1 - psi0) * weight
    psi[weight >= 1.0] = psi1

    rots = np.stack([rot_y(float(p)) for p in psi])
    degraded = np.empty_like(frames)
    for t in range(n):
        H = Kv[t] @ rots[t].T @ np.linalg.inv(K[t])
        cv2.warpPerspective(frames[t], H, (w, h), dst=degraded[t], flags=cv2.INTER_LINEAR,
                            borderMode=cv2.BORDER_REPLICATE)
    look_away = np.degrees(np.abs(psi - psi0))
    nodes = loop_nodes(look_away, start_tol=1e-6, return_tol=1e-6)
    assert nodes is not None
    per_frame = {"look_away_deg": to_list(look_away)}
    camera = None
    if c2w is not None:
        deg = c2w.copy()
        deg[:, :3, :3] = c2w[:, :3, :3] @ rots
        per_frame["pose_distance_deg"] = to_list(pose_distance_deg(deg))
        camera = deg.astype(np.float32)
    params = {"mode": "rotation", "crop_scale": config.crop_scale, "yaw_start_deg": round(math.degrees(psi0), 4),
              "yaw_away_deg": round(math.degrees(psi1), 4), **timing}
    return FamilyResult(graph=_graph(window, nodes, per_frame), degraded=degraded, camera=camera,
                        intrinsics=Kv.astype(np.float32), params=params)


def _crop_loop(window: Window, config: CameraLoopConfig, rng: np.random.Generator,
               region: tuple[int, int, int, int] | None, weight: np.ndarray, timing: dict[str, int]) -> FamilyResult:
    """No intrinsics: a crop window at ``crop_scale`` panning away and back (an intrinsics change we cannot state)."""
    frames = window.frames
    h, w = frames.shape[1:3]
    scale = config.crop_scale
    lo, hi = clamp_centre(scale, (-1e9, 0.0), (h, w))[0], clamp_centre(scale, (1e9, 0.0), (h, w))[0]
    if region is None:
        x0, away = (w - 1) / 2.0, float(rng.choice([-1.0, 1.0]))
    else:
        x0 = float(np.clip((region[0] + region[2] - 1) / 2.0, lo, hi))
        away = -1.0 if x0 >= (w - 1) / 2.0 else 1.0
    x1 = float(np.clip(x0 + away * config.max_pan_fraction * w, lo, hi))
    if abs(x1 - x0) < MIN_PAN_FRACTION * w:
        raise NotApplicable("camera_loop: no margin to pan within the frame")
    xs = x0 + (x1 - x0) * weight
    xs[weight >= 1.0] = x1
    affines = np.stack([crop_affine(scale, (float(x), (h - 1) / 2.0), (h, w)) for x in xs])
    shift = np.abs(xs - x0) / w
    nodes = loop_nodes(shift, start_tol=1e-9, return_tol=1e-9)
    assert nodes is not None
    params = {"mode": "crop", "crop_scale": scale, "centre_start_x": round(x0, 3), "centre_away_x": round(x1, 3),
              **timing}
    return FamilyResult(graph=_graph(window, nodes, {"view_shift": to_list(shift)}),
                        degraded=warp_affine_frames(frames, affines), params=params)
