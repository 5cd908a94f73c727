"""camera_loop: the view turns away from the dynamic region until it is out of sight for at least one whole latent
chunk, and turns back (ReMind Appendix F.2: the memory anchor is the initial view; the recovery node is the frame
after the farthest one whose pose is nearest to that view).

- ``native`` (tried first): the clip's own poses leave and return. The degraded clip is the clean one; the event's
  visibility is the anchor frame's dynamic region re-projected by each frame's rotation relative to the anchor.
- ``rotation`` (intrinsics known): a virtual camera. The clean clip is rendered at a crop ``A0`` (scale and centre
  chosen so the crop holds the region and the turned view can clear it; clean intrinsics ``A0 K``); the degraded
  clip turns that camera by a yaw or pitch ``psi_t``: clean pixel -> degraded pixel by ``H_t = Kv R(psi_t)^T K^-1``
  with ``Kv = A0 K``; ``degraded_camera = c2w_t @ [R(psi_t) | 0]``. Outside the interval ``psi = 0``: the same frames.
- ``crop`` (no intrinsics): the crop window itself pans off the region and back; no camera claimed.

Recovery by the F.2 rule on the degraded poses; a loop whose nearest return is farther than
``return_tolerance_deg`` from the anchor view is not a loop.
"""
from __future__ import annotations

import math

import cv2
import numpy as np

from schemas.cameras import rotation_angle_deg
from schemas.config_augment import CameraLoopConfig
from schemas.constants import NUM_CHUNKS, chunk_frames, frame_to_chunk
from schemas.graph import FrameGraph, InterruptionKind
from tasks.augment.common import (
    FamilyResult, NotApplicable, affine3, clamp_centre, crop_affine, draw_chunks, draw_int, event_state,
    geometry_of, interval_frames, out_and_back, to_list, warp_affine_frames)
from tasks.augment.visibility import region_box, region_points, visibility_curve
from tasks.graph import GraphError, chunked_graph
from tasks.records import Window

MARGIN_PX = 6.0  # the turned view clears the region by this much
AXES = ("yaw", "pitch")


def rot_y(psi: float) -> np.ndarray:
    """Yaw about the camera's y axis (OpenCV: y down), positive turns the view right."""
    c, s = math.cos(psi), math.sin(psi)
    return np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])


def rot_x(phi: float) -> np.ndarray:
    """Pitch about the camera's x axis; positive turns the view down (OpenCV: y down)."""
    c, s = math.cos(phi), math.sin(phi)
    return np.array([[1.0, 0.0, 0.0], [0.0, c, s], [0.0, -s, c]])


def rotation(axis: str, angle: float) -> np.ndarray:
    return rot_y(angle) if axis == "yaw" else rot_x(angle)


def pose_distance_deg(c2w: np.ndarray, ref: int = 0) -> np.ndarray:
    """Rotation angle of each pose to the pose of frame ``ref``, degrees."""
    rots = np.asarray(c2w, np.float64)[:, :3, :3]
    return np.asarray(rotation_angle_deg(np.broadcast_to(rots[ref], rots.shape), rots), np.float64)


def f2_return(dist: np.ndarray, after: int, tol: float = 1e-3) -> tuple[int, int]:
    """(farthest, recovery) by Appendix F.2: the farthest frame after ``after`` from the anchor view, and the first
    frame after it whose distance is within ``tol`` of the least distance after it."""
    far = after + 1 + int(np.argmax(dist[after + 1:]))
    if far >= len(dist) - 1:
        return far, far
    rest = dist[far + 1:]
    return far, far + 1 + int(np.flatnonzero(rest <= rest.min() + tol)[0])


def loop_graph(window: Window, dist: np.ndarray, anchor: int, vis: np.ndarray, tol: float, threshold: float,
               per_frame: dict[str, list[float | None]], away_start: int) -> tuple[FrameGraph, dict[str, float]]:
    """The graph of a loop whose degraded poses are ``dist`` degrees from the anchor view (frame ``anchor``)."""
    far, ret = f2_return(dist, anchor)
    if dist[far] <= tol:
        raise NotApplicable("camera_loop: the view never leaves the anchor view")
    if dist[ret] > tol:
        raise NotApplicable(f"camera_loop: the nearest return is {dist[ret]:.2f} deg from the anchor view "
                            f"(tolerance {tol}): not a loop")
    chunk = frame_to_chunk(ret)
    near = np.all(dist[chunk_frames(chunk)[0]:ret + 1] <= tol) and chunk_frames(chunk)[0] > away_start
    recovery_chunk = chunk if near else chunk + 1
    if recovery_chunk > NUM_CHUNKS - 1:
        raise NotApplicable(f"camera_loop: returns at frame {ret}, too late for a recovery chunk")
    recovery = ret if near else chunk_frames(recovery_chunk)[0]
    first = frame_to_chunk(anchor) + 1
    graph = chunked_graph(InterruptionKind.camera_loop, first, recovery_chunk - 1, vis, threshold,
                          recovery_frames=[recovery],
                          event_frames={"away_start": away_start, "farthest": far, "return": ret},
                          per_frame={**per_frame, "pose_distance_deg": to_list(dist), **event_state(window)})
    return graph, {"return_frame": ret, "residual_deg": round(float(dist[ret]), 4),
                   "peak_deg": round(float(dist[far]), 4)}


def reproject(window: Window, points: np.ndarray, anchor: int, c2w: np.ndarray, K: np.ndarray) -> list[np.ndarray]:
    """The anchor frame's region points in every frame: through the depth when known (window or truth), else
    through the rotation alone (points at infinity). Points behind a camera are dropped off-frame (NaN)."""
    depth = window.depth if window.depth is not None else (window.truth.depth if window.truth is not None else None)
    n, h, w = window.frames.shape[:3]
    rays = np.column_stack([points, np.ones(len(points))]) @ np.linalg.inv(K[anchor]).T
    if depth is not None:
        dh, dw = np.asarray(depth).shape[1:3]
        u = np.clip(np.rint((points[:, 0] + 0.5) * dw / w - 0.5), 0, dw - 1).astype(int)
        v = np.clip(np.rint((points[:, 1] + 0.5) * dh / h - 0.5), 0, dh - 1).astype(int)
        z = np.asarray(depth[anchor], np.float64)[v, u]
        world = (rays * z[:, None]) @ c2w[anchor, :3, :3].T + c2w[anchor, :3, 3]
    else:
        world = rays @ c2w[anchor, :3, :3].T
    out = []
    for t in range(n):
        cam = (world - (c2w[t, :3, 3] if depth is not None else 0.0)) @ c2w[t, :3, :3]
        proj = cam @ K[t].T
        with np.errstate(divide="ignore", invalid="ignore"):
            uv = proj[:, :2] / proj[:, 2:3]
        uv[cam[:, 2] <= 1e-9] = np.nan
        out.append(uv)
    return out


def native_loop(window: Window, config: CameraLoopConfig, threshold: float) -> FamilyResult:
    c2w, K = geometry_of(window)
    if c2w is None or K is None:
        raise NotApplicable("camera_loop native: no geometry")
    dist0 = pose_distance_deg(c2w)
    if dist0.max() < config.native_min_deg:
        raise NotApplicable(f"camera_loop native: the camera turns at most {dist0.max():.1f} deg")
    away = int(np.flatnonzero(dist0 > config.return_tolerance_deg)[0])
    first = frame_to_chunk(away)
    if first == 0:
        raise NotApplicable(f"camera_loop native: the view leaves at frame {away}, inside the anchor chunk")
    anchor = chunk_frames(first)[0] - 1
    dist = pose_distance_deg(c2w, anchor)
    n, h, w = window.frames.shape[:3]
    points, origin = region_points(window)
    if origin == "whole_frame":
        raise NotApplicable("camera_loop native: the dynamic region is unknown")
    vis = visibility_curve(reproject(window, points[anchor], anchor, c2w, K), (h, w))
    graph, extra = loop_graph(window, dist, anchor, vis, config.return_tolerance_deg, threshold, {}, away)
    return FamilyResult(graph=graph, degraded=window.frames.copy(), camera=c2w.astype(np.float32),
                        intrinsics=K.astype(np.float32), params={"mode": "native", "region_source": origin, **extra})


def _footprint(H: np.ndarray, hw: tuple[int, int]) -> np.ndarray:
    """(M,2) source pixels seen by the degraded frame's border under the clean->degraded map ``H``."""
    h, w = hw
    xs, ys = np.linspace(-0.5, w - 0.5, 9), np.linspace(-0.5, h - 0.5, 7)
    border = np.concatenate([np.stack([xs, np.full_like(xs, -0.5)], 1), np.stack([xs, np.full_like(xs, h - 0.5)], 1),
                             np.stack([np.full_like(ys, -0.5), ys], 1), np.stack([np.full_like(ys, w - 0.5), ys], 1)])
    src = np.column_stack([border, np.ones(len(border))]) @ np.linalg.inv(H).T
    if (src[:, 2] <= 1e-9).any():
        return np.full((len(border), 2), np.nan)
    return src[:, :2] / src[:, 2:3]


def _clear(fp: np.ndarray, box: tuple[float, float, float, float], hw: tuple[int, int]) -> tuple[bool, bool]:
    """(inside the source frame, wholly off the region box)."""
    h, w = hw
    if not np.isfinite(fp).all():
        return False, False
    inside = bool((fp[:, 0] >= -0.5 - 1e-6).all() and (fp[:, 0] <= w - 0.5 + 1e-6).all()
                  and (fp[:, 1] >= -0.5 - 1e-6).all() and (fp[:, 1] <= h - 0.5 + 1e-6).all())
    m = MARGIN_PX
    off = bool((fp[:, 0] > box[2] + m).all() or (fp[:, 0] < box[0] - m).all()
               or (fp[:, 1] > box[3] + m).all() or (fp[:, 1] < box[1] - m).all())
    return inside, off


def plan_turn(K: np.ndarray, box: tuple[float, float, float, float], hw: tuple[int, int], max_scale: float,
              rng: np.random.Generator) -> dict | None:
    """The smallest crop scale, with a centre holding ``box``, from which a yaw or pitch clears it; None if none."""
    h, w = hw
    bw, bh = box[2] - box[0] + 1, box[3] - box[1] + 1
    for scale in np.arange(1.2, max_scale + 1e-9, 0.1):
        cw, ch = w / scale, h / scale
        options = []
        for axis in AXES:  # the crop holds the region across the turn, and at least 80 % of it along the other axis
            along, across = (cw >= bw + 2, ch >= 0.8 * bh) if axis == "yaw" else (ch >= bh + 2, cw >= 0.8 * bw)
            if not (along and across):
                continue
            for sign in (1.0, -1.0):
                if axis == "yaw":
                    cx = box[0] - 1 + cw / 2 if sign > 0 else box[2] + 1 - cw / 2
                    cy = (box[1] + box[3]) / 2
                else:
                    cx = (box[0] + box[2]) / 2
                    cy = box[1] - 1 + ch / 2 if sign > 0 else box[3] + 1 - ch / 2
                centre = clamp_centre(float(scale), (cx, cy), hw)
                A0 = affine3(crop_affine(float(scale), centre, hw))
                Kv = A0 @ K
                K_inv = np.linalg.inv(K)
                for step in range(1, 121):
                    psi = sign * math.radians(0.25 * step)
                    inside, off = _clear(_footprint(Kv @ rotation(axis, psi).T @ K_inv, hw), box, hw)
                    if not inside:
                        break
                    if off:
                        options.append({"scale": float(scale), "centre": centre, "axis": axis, "angle": psi,
                                        "A0": A0[:2]})
                        break
        if options:
            return options[int(rng.integers(len(options)))]
    return None


def _schedule(rng: np.random.Generator, config: CameraLoopConfig, n: int) -> tuple[np.ndarray, int, int]:
    first, last = draw_chunks(rng, config.hidden_chunks)
    start, end, hidden_start, hidden_end = interval_frames(first, last)
    ramp_out, ramp_back = draw_int(rng, config.ramp_frames), draw_int(rng, config.ramp_frames)
    away = hidden_start - ramp_out - int(rng.integers(0, hidden_start - start - ramp_out + 1))
    back_end = end - int(rng.integers(0, end - hidden_end - ramp_back + 1))  # last frame still turned
    hold = back_end - ramp_back + 1 - (away + ramp_out)
    return out_and_back(n, away, ramp_out, hold, ramp_back), away, start - 1


def virtual_loop(window: Window, config: CameraLoopConfig, rng: np.random.Generator, threshold: float) -> FamilyResult:
    frames = window.frames
    n, h, w = frames.shape[:3]
    c2w, K = geometry_of(window)
    points, origin = region_points(window)
    if origin == "whole_frame":
        raise NotApplicable("camera_loop: the dynamic region is unknown, so no view is known to leave it")
    box = region_box(points)
    assert box is not None
    K0 = K[0] if K is not None else np.array([[w, 0, (w - 1) / 2], [0, w, (h - 1) / 2], [0, 0, 1.0]])
    plan = plan_turn(K0, box, (h, w), min(config.crop_scale, 1.0 / max(1e-6, 1 - config.max_pan_fraction)), rng)
    if plan is None:
        raise NotApplicable(f"camera_loop: no crop up to scale {config.crop_scale} holds the region "
                            f"({box[2] - box[0] + 1:.0f}x{box[3] - box[1] + 1:.0f} px) and can turn off it")
    weight, away, anchor = _schedule(rng, config, n)
    psi = plan["angle"] * weight
    psi[weight >= 1.0] = plan["angle"]
    A0 = np.tile(plan["A0"], (n, 1, 1))
    clean = warp_affine_frames(frames, A0)
    degraded = clean.copy()
    if K is None:  # no intrinsics: the crop window pans by the turn's pixel shift at the principal point
        Kn = np.tile(K0, (n, 1, 1))
    else:
        Kn = K
    Kv = affine3(A0) @ Kn
    maps = np.stack([Kv[t] @ rotation(plan["axis"], float(psi[t])).T @ np.linalg.inv(Kn[t]) for t in range(n)])
    for t in np.flatnonzero(psi != 0):
        cv2.warpPerspective(frames[t], maps[t], (w, h), dst=degraded[t], flags=cv2.INTER_LINEAR,
                            borderMode=cv2.BORDER_REPLICATE)
    vis = visibility_curve(points, (h, w), maps=maps)
    rots = np.stack([rotation(plan["axis"], float(p)) for p in psi])
    base = c2w if c2w is not None else np.tile(np.eye(4), (n, 1, 1))
    deg = base.copy()
    deg[:, :3, :3] = base[:, :3, :3] @ rots
    dist = pose_distance_deg(deg, anchor)
    per_frame = {"look_away_deg": to_list(np.degrees(np.abs(psi)))}
    graph, extra = loop_graph(window, dist, anchor, vis, config.return_tolerance_deg, threshold, per_frame, away)
    direction = {("yaw", True): "right", ("yaw", False): "left", ("pitch", True): "down", ("pitch", False): "up"}[
        (plan["axis"], plan["angle"] > 0)]
    params = {"mode": "rotation" if K is not None else "crop", "crop_scale": round(plan["scale"], 4),
              "crop_centre": [round(c, 3) for c in plan["centre"]], "axis": plan["axis"], "direction": direction,
              "angle_deg": round(math.degrees(plan["angle"]), 4), "region_source": origin, **extra}
    return FamilyResult(graph=graph, degraded=degraded,
                        camera=None if c2w is None or K is None else deg.astype(np.float32),
                        intrinsics=None if K is None else Kv.astype(np.float32), params=params,
                        clean_affines=A0, clean=clean)


def check_camera_loop(window: Window, config: CameraLoopConfig) -> str | None:
    return None if config.crop_scale > 1.0 or geometry_of(window)[0] is not None else \
        "camera_loop needs poses (a native loop) or crop_scale > 1 (a virtual turn)"


def apply_camera_loop(window: Window, config: CameraLoopConfig, rng: np.random.Generator,
                      threshold: float = 0.05) -> FamilyResult:
    try:
        return native_loop(window, config, threshold)
    except (NotApplicable, GraphError) as native_reason:
        try:
            result = virtual_loop(window, config, rng, threshold)
        except (NotApplicable, GraphError) as virtual_reason:
            raise NotApplicable(f"{native_reason}; {virtual_reason}") from None
        result.params["native_rejected"] = str(native_reason)
        return result
