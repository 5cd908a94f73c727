"""Procedural synthetic clips with exact ground truth: the offline default input and the test fixture.

A clip is a textured wall (and a plank floor) seen by a rotating camera, rendered per frame with the exact
plane-induced homography, with one dynamic event drawn in the wall plane. Camera poses, intrinsics, depth,
the event state, the object's mask and box and the projections of known 3D marker points are all exact.
Everything is deterministic in (config.seed, index).
"""
from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np

from schemas.config import SyntheticConfig
from schemas.constants import HEIGHT, NUM_FRAMES, WIDTH
from tasks.records import GroundTruth, SourceItem
from tasks.sources.synthetic_event_base import Event, Patch
from tasks.sources.synthetic_events import EVENT_TYPES, STATE_VARIABLES, make_event
from tasks.sources.synthetic_scene import (HFOV_DEG, Plane, Stage, camera_path, floor_texture, intrinsics_matrix,
                                           loop_return_frame, place_markers, plane_extent, stamp_marker,
                                           wall_texture)

GENERATOR = "remind-curate synthetic v1"
_CAMERA_TEXT = {
    "static": "The camera stays still.",
    "pan": "The camera pans slowly to the {side}.",
    "pan_return": "The camera pans to the {side}, away from the {obj}, then pans back to the starting view.",
}
_OBJECTS = {"fill": "glass", "translate": "ball", "rotate": "pinwheel", "grow": "balloon", "light": "lamp"}
_WARP = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP


@dataclass
class SyntheticClip:
    """One rendered clip and its exact ground truth (pixel coordinates = array indices)."""

    index: int
    seed: int  # the generator seed (config.seed); the clip is a function of (seed, index)
    family: str
    event_type: str
    trajectory: str
    frames: np.ndarray  # (N,H,W,3) uint8 RGB
    camera_c2w: np.ndarray  # (N,4,4) float32, OpenCV axes, frame 0 = identity
    intrinsics: np.ndarray  # (N,3,3) float32
    depth: np.ndarray  # (N,H,W) float32 z-depth
    state: np.ndarray  # (N,) float32 in [0,1]
    object_mask: np.ndarray  # (N,H,W) bool
    object_box: np.ndarray  # (N,4) float32 x0,y0,x1,y1 (x1,y1 exclusive pixel edges); NaN when invisible
    loop_return_frame: int | None
    points_world: np.ndarray  # (M,3) float32 marker centres on the wall
    caption: str
    scene: dict[str, Any] = field(default_factory=dict)  # wall depth, floor height, ... (extra, JSON-able)

    def to_ground_truth(self) -> GroundTruth:
        """The pipeline's view of this clip's truth."""
        return GroundTruth(
            camera_c2w=self.camera_c2w, intrinsics=self.intrinsics, depth=self.depth, state=self.state,
            object_mask=self.object_mask, object_box=self.object_box, loop_return_frame=self.loop_return_frame,
            event_type=self.event_type, caption=self.caption, index=self.index,
            extra={"family": self.family, "trajectory": self.trajectory, "seed": self.seed,
                   "state_variable": STATE_VARIABLES[self.family],
                   "points_world": self.points_world.astype(float).tolist(), **self.scene})  # JSON-able


def clip_spec(index: int, config: SyntheticConfig) -> tuple[str, str]:
    """(family, trajectory) of clip ``index``: the first |F|*|T| indices cover every pair, mixed early."""
    fams, trajs = list(config.families), list(config.trajectories)
    if not fams or not trajs:
        raise ValueError("synthetic config needs at least one family and one trajectory")
    k = index % (len(fams) * len(trajs))
    f = k % len(fams)
    return fams[f], trajs[(k // len(fams) + f) % len(trajs)]


def project_points(points_world: np.ndarray, camera_c2w: np.ndarray, intrinsics: np.ndarray) -> np.ndarray:
    """(N,M,2) pixel coordinates (x, y) of world points; NaN behind the camera. 2-D pose/K broadcast as N=1."""
    pts = np.asarray(points_world, np.float64).reshape(-1, 3)
    c2w = np.asarray(camera_c2w, np.float64).reshape(-1, 4, 4)
    k = np.broadcast_to(np.asarray(intrinsics, np.float64).reshape(-1, 3, 3), (len(c2w), 3, 3))
    rot, centre = c2w[:, :3, :3], c2w[:, :3, 3]
    cam = np.einsum("nji,nmj->nmi", rot, pts[None, :, :] - centre[:, None, :])  # R^T (X - C)
    pix = np.einsum("nij,nmj->nmi", k, cam)
    with np.errstate(divide="ignore", invalid="ignore"):
        uv = pix[..., :2] / pix[..., 2:3]
    uv[cam[..., 2] <= 1e-9] = np.nan
    return uv


def _clip_rng(seed: int, index: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([seed % (1 << 63), index, 0x5EED]))


def _translate(dx: float, dy: float) -> np.ndarray:
    return np.array([[1.0, 0.0, dx], [0.0, 1.0, dy], [0.0, 0.0, 1.0]])


@dataclass
class _Scene:
    """Everything static: intrinsics, planes and their textures."""

    k: np.ndarray
    k_inv: np.ndarray
    wall: Plane
    wall_tex: np.ndarray
    floor: Plane
    floor_tex: np.ndarray
    height: int
    width: int


def _build_scene(rng: np.random.Generator, poses: np.ndarray, event: Event, stage: Stage, wall_depth: float,
                 floor_h: float, markers: np.ndarray) -> tuple[_Scene, tuple[int, int]]:
    """Texture both planes over exactly the area any frame sees; returns the scene and the wall offset."""
    h, w, unit = stage.height, stage.width, stage.unit
    k = intrinsics_matrix(h, w)
    f, cx, cy = k[0, 0], k[0, 2], k[1, 2]
    ident = np.eye(3)
    wall = Plane(np.array([0.0, 0.0, 1.0]), wall_depth, np.array([[1.0, 0, 0], [0, 1.0, 0]]), ident)
    floor = Plane(np.array([0.0, 1.0, 0.0]), floor_h, np.array([[1.0, 0, 0], [0, 0, 1.0]]), ident)
    wall_uv = plane_extent(wall, k, poses, h, w)
    wall_uv[:, 1] = np.minimum(wall_uv[:, 1], floor_h)  # below the floor line the floor hides the wall
    px = np.concatenate([wall_uv * (f / wall_depth) + np.array([cx, cy]),
                         np.array([[0, 0], [w, stage.floor_y]]), np.array(event.roi).reshape(2, 2)])
    margin = 32
    ox, oy = int(math.floor(px[:, 0].min())) - margin, int(math.floor(px[:, 1].min())) - margin
    tw, th = int(math.ceil(px[:, 0].max())) + margin - ox, int(math.ceil(stage.floor_y)) + margin - oy
    wall.to_tex = np.array([[f / wall_depth, 0.0, cx - ox], [0.0, f / wall_depth, cy - oy], [0.0, 0.0, 1.0]])
    wall_tex = wall_texture(rng, th, tw, unit)
    event.draw_static(wall_tex, (ox, oy))
    for mx, my in markers:
        stamp_marker(wall_tex, mx - ox, my - oy, unit)

    floor_uv = plane_extent(floor, k, poses, h, w)
    floor_uv = floor_uv[floor_uv[:, 1] <= wall_depth]  # beyond the wall the floor is hidden
    xs = np.concatenate([floor_uv[:, 0], wall_uv[:, 0]])
    zs = np.concatenate([floor_uv[:, 1], [wall_depth]])
    scale = f / wall_depth  # texels per unit: about the floor's on-screen scale at the wall
    x_min, z_min = xs.min() - 0.2, max(zs.min() - 0.2, 0.0)
    fw = int(math.ceil((xs.max() + 0.2 - x_min) * scale))
    fh = int(math.ceil((wall_depth + 0.2 - z_min) * scale))
    floor.to_tex = np.array([[scale, 0.0, -scale * x_min], [0.0, scale, -scale * z_min], [0.0, 0.0, 1.0]])
    floor_tex = floor_texture(rng, fh, fw, 0.28 * scale)
    return _Scene(k, np.linalg.inv(k), wall, wall_tex, floor, floor_tex, h, w), (ox, oy)


def _floor_start_row(scene: _Scene, rot: np.ndarray, centre: np.ndarray) -> int:
    """First frame row where the floor can show: above the image of the wall/floor line it cannot."""
    d, hf = scene.wall.offset, scene.floor.offset
    ends = np.array([[-100.0 * d, hf, d], [100.0 * d, hf, d]])
    cam = (ends - centre) @ rot  # rows: R^T (X - C)
    pix = cam @ scene.k.T
    line = np.cross(pix[0], pix[1])
    if abs(line[1]) < 1e-9:
        return 0
    ys = [-(line[0] * x + line[2]) / line[1] for x in (0.0, scene.width - 1.0)]
    return int(np.clip(math.floor(min(ys)) - 2, 0, scene.height))


def _background(scene: _Scene, pose: np.ndarray, img: np.ndarray, depth: np.ndarray) -> None:
    """Render the static scene's image and z-depth at one pose into img and depth."""
    rot, centre, h, w = pose[:3, :3], pose[:3, 3], scene.height, scene.width
    m_wall = scene.wall.pixel_to_tex(scene.k_inv, rot, centre)
    cv2.warpPerspective(scene.wall_tex, m_wall, (w, h), dst=img, flags=_WARP, borderMode=cv2.BORDER_REFLECT)
    scene.wall.depth(scene.k, rot, centre, slice(0, h), w, out=depth)
    y0 = _floor_start_row(scene, rot, centre)
    if y0 < h:
        fdepth = scene.floor.depth(scene.k, rot, centre, slice(y0, h), w)
        on_floor = fdepth < depth[y0:]
        m_floor = scene.floor.pixel_to_tex(scene.k_inv, rot, centre) @ _translate(0, y0)
        fimg = cv2.warpPerspective(scene.floor_tex, m_floor, (w, h - y0), flags=_WARP, borderMode=cv2.BORDER_REFLECT)
        np.copyto(img[y0:], fimg, where=on_floor[..., None])
        np.copyto(depth[y0:], fdepth, where=on_floor)


def _overlay(frame: np.ndarray, mask: np.ndarray, m_wall: np.ndarray, x0: int, y0: int, patch: Patch) -> None:
    """Warp the event's patch (at texture pixel x0, y0) into the frame in place; write its visible mask."""
    h, w = frame.shape[:2]
    rgb, alpha = patch.rgb, patch.alpha
    x1, y1 = x0 + rgb.shape[1], y0 + rgb.shape[0]
    corners = np.array([[x0, x1, x1, x0], [y0, y0, y1, y1], [1.0, 1.0, 1.0, 1.0]])
    img = np.linalg.inv(m_wall) @ corners
    if np.any(img[2] <= 1e-9):
        bx0, by0, bx1, by1 = 0, 0, w, h
    else:
        xy = img[:2] / img[2]
        bx0, by0 = max(0, int(math.floor(xy[0].min())) - 1), max(0, int(math.floor(xy[1].min())) - 1)
        bx1, by1 = min(w, int(math.ceil(xy[0].max())) + 2), min(h, int(math.ceil(xy[1].max())) + 2)
    if bx1 <= bx0 or by1 <= by0:
        return
    m = _translate(-x0, -y0) @ m_wall @ _translate(bx0, by0)
    size = (bx1 - bx0, by1 - by0)
    warped = cv2.warpPerspective(np.dstack([rgb, alpha]), m, size, flags=_WARP, borderMode=cv2.BORDER_REPLICATE)
    inside = np.zeros(alpha.shape, np.uint8)
    inside[1:-1, 1:-1] = 1  # bilinear footprint fully inside the patch: identical to warping the whole texture
    valid = cv2.warpPerspective(inside, m, size, flags=cv2.INTER_NEAREST | cv2.WARP_INVERSE_MAP,
                                borderMode=cv2.BORDER_CONSTANT, borderValue=0).astype(bool)
    np.copyto(frame[by0:by1, bx0:bx1], warped[..., :3], where=valid[..., None])
    mask[by0:by1, bx0:bx1] = warped[..., 3] > 127


def _boxes(masks: np.ndarray) -> np.ndarray:
    """(N,4) x0,y0,x1,y1 of each mask (exclusive ends), NaN rows for empty masks."""
    out = np.full((len(masks), 4), np.nan, np.float32)
    cols, rows = masks.any(axis=1), masks.any(axis=2)
    for i in range(len(masks)):
        xs, ys = np.flatnonzero(cols[i]), np.flatnonzero(rows[i])
        if len(xs):
            out[i] = (xs[0], ys[0], xs[-1] + 1, ys[-1] + 1)
    return out


def _caption(event: Event, trajectory: str, pan_sign: int) -> str:
    side = "right" if pan_sign > 0 else "left"
    return f"{event.caption()} {_CAMERA_TEXT[trajectory].format(side=side, obj=_OBJECTS[event.family])}"


def render_clip(seed: int, index: int, family: str, trajectory: str, num_frames: int = NUM_FRAMES,
                height: int = HEIGHT, width: int = WIDTH) -> SyntheticClip:
    """Render one clip of the given family and trajectory, deterministic in (seed, index)."""
    if family not in EVENT_TYPES:
        raise ValueError(f"unknown synthetic family {family!r}")
    if num_frames < 4 or height < 64 or width < 64:
        raise ValueError("synthetic clips need at least 4 frames of 64x64")
    rng = _clip_rng(seed, index)
    poses, pan_sign = camera_path(trajectory, num_frames, rng)
    k = intrinsics_matrix(height, width)
    unit = min(height / HEIGHT, width / WIDTH)
    wall_depth = float(rng.uniform(4.5, 5.5))
    floor_y = float(rng.uniform(0.82, 0.88) * height)
    floor_h = (floor_y - k[1, 2]) * wall_depth / k[1, 1]
    stage = Stage(height, width, unit, floor_y, num_frames, pan_sign, trajectory)
    event = make_event(family, rng, stage)
    markers = place_markers(rng, height, width, floor_y, unit, [event.roi])
    scene, (ox, oy) = _build_scene(rng, poses, event, stage, wall_depth, floor_h, markers)
    rx0, ry0, rx1, ry1 = event.roi
    roi_tex = (rx0 - ox, ry0 - oy, rx1 - ox, ry1 - oy)
    event.prepare(scene.wall_tex[roi_tex[1]:roi_tex[3], roi_tex[0]:roi_tex[2]].copy())

    frames = np.empty((num_frames, height, width, 3), np.uint8)
    depth = np.empty((num_frames, height, width), np.float32)
    masks = np.zeros((num_frames, height, width), bool)
    keys = [pose.tobytes() for pose in poses]
    uses = Counter(keys)
    clean: dict[bytes, tuple[np.ndarray, np.ndarray]] = {}  # backgrounds of poses that recur (holds, loops)
    for t in range(num_frames):
        key = keys[t]
        if key in clean:
            frames[t], depth[t] = clean[key]
        else:
            _background(scene, poses[t], frames[t], depth[t])
            if uses[key] > 1:
                clean[key] = (frames[t].copy(), depth[t].copy())
        uses[key] -= 1
        if uses[key] == 0:
            clean.pop(key, None)
        patch = event.render(t)
        m_wall = scene.wall.pixel_to_tex(scene.k_inv, poses[t, :3, :3], poses[t, :3, 3])
        _overlay(frames[t], masks[t], m_wall, roi_tex[0] + patch.x, roi_tex[1] + patch.y, patch)

    c2w = poses.astype(np.float32)
    f, cx, cy = k[0, 0], k[0, 2], k[1, 2]
    points = np.column_stack([(markers[:, 0] - cx) * wall_depth / f, (markers[:, 1] - cy) * wall_depth / f,
                              np.full(len(markers), wall_depth)]).astype(np.float32)
    scene_info = {"wall_depth": wall_depth, "floor_height": float(floor_h), "floor_row": floor_y, "hfov_deg": HFOV_DEG,
                  "pan_sign": pan_sign, "marker_radius_px": 3.5 * unit, "event_roi": list(event.roi)}
    return SyntheticClip(
        index=index, seed=seed, family=family, event_type=EVENT_TYPES[family], trajectory=trajectory,
        frames=frames, camera_c2w=c2w, intrinsics=np.tile(k.astype(np.float32), (num_frames, 1, 1)), depth=depth,
        state=np.clip(event.state, 0.0, 1.0).astype(np.float32), object_mask=masks, object_box=_boxes(masks),
        loop_return_frame=loop_return_frame(c2w) if trajectory == "pan_return" else None,
        points_world=points, caption=_caption(event, trajectory, pan_sign), scene=scene_info)


def render_synthetic_clip(index: int, config: SyntheticConfig, num_frames: int = NUM_FRAMES,
                          height: int = HEIGHT, width: int = WIDTH) -> SyntheticClip:
    """Clip ``index`` of the configured synthetic source."""
    family, trajectory = clip_spec(index, config)
    return render_clip(config.seed, index, family, trajectory, num_frames, height, width)


def synthetic_items(n: int, config: SyntheticConfig) -> list[SourceItem]:
    """The first n synthetic source items (nothing is rendered here)."""
    items = []
    for index in range(n):
        family, trajectory = clip_spec(index, config)
        seed = config.seed
        items.append(SourceItem(
            clip_id=f"synthetic-{seed}-{index:05d}", source="synthetic", uri=f"synthetic://{seed}/{index}", path=None,
            provenance={"family": family, "trajectory": trajectory, "event_type": EVENT_TYPES[family],
                        "generator": GENERATOR, "license": "generated"}))
    return items


def parse_uri(uri: str) -> tuple[int, int]:
    """``synthetic://{seed}/{index}`` -> (seed, index)."""
    prefix = "synthetic://"
    if not uri.startswith(prefix):
        raise ValueError(f"not a synthetic uri: {uri!r}")
    try:
        seed, index = uri[len(prefix):].split("/")
        return int(seed), int(index)
    except ValueError as exc:
        raise ValueError(f"malformed synthetic uri: {uri!r}") from exc


def render_item(item: SourceItem, config: SyntheticConfig, num_frames: int = NUM_FRAMES, height: int = HEIGHT,
                width: int = WIDTH) -> SyntheticClip:
    """Render a synthetic SourceItem; its uri's seed and its provenance's family/trajectory win over config."""
    if item.source != "synthetic":
        raise ValueError(f"{item.clip_id}: not a synthetic item (source={item.source!r})")
    seed, index = parse_uri(item.uri)
    family, trajectory = clip_spec(index, config)
    family = str(item.provenance.get("family", family))
    trajectory = str(item.provenance.get("trajectory", trajectory))
    return render_clip(seed, index, family, trajectory, num_frames, height, width)
