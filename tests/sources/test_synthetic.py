"""The synthetic source: determinism, exact geometry, event truth, markers and an H.264 round trip."""
from __future__ import annotations

import functools
import io
import json

import av
import cv2
import numpy as np
import pytest

from schemas.config import SyntheticConfig
from tasks.records import GroundTruth
from tasks.sources.synthetic import (SyntheticClip, clip_spec, parse_uri, project_points, render_item,
                                     render_synthetic_clip, synthetic_items)
from tasks.sources.synthetic_scene import rotation_angles_deg

CONFIG = SyntheticConfig(seed=7)
SMALL = {"num_frames": 12, "height": 240, "width": 416}
EVENT_TYPES = {"fill": "container_filling", "translate": "ball_rolling", "rotate": "fan_rotation",
               "grow": "balloon_inflating", "light": "lamp_dimming"}


@functools.lru_cache(maxsize=2)
def full_clip(index: int) -> SyntheticClip:
    """81 frames at 480x832; cached because several tests look at the same clip."""
    return render_synthetic_clip(index, CONFIG)


def marker_centroid(frame: np.ndarray, guess: np.ndarray, win: int = 12) -> np.ndarray | None:
    """Darkness-weighted centroid of the marker's inner disc found near ``guess`` (None if not found)."""
    x, y = int(round(guess[0])), int(round(guess[1]))
    gray = frame[y - win:y + win + 1, x - win:x + win + 1].astype(np.float64).mean(axis=2)
    dark = 255.0 - gray
    _, labels = cv2.connectedComponents((dark > 128).astype(np.uint8), connectivity=4)
    label = labels[win, win]
    if label == 0:
        return None
    blob = cv2.dilate((labels == label).astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
    w = dark * blob
    ys, xs = np.mgrid[0:gray.shape[0], 0:gray.shape[1]]
    return np.array([(w * xs).sum() / w.sum() + x - win, (w * ys).sum() / w.sum() + y - win])


def test_clip_spec_covers_every_pair_in_first_15() -> None:
    pairs = {clip_spec(i, CONFIG) for i in range(15)}
    assert pairs == {(f, t) for f in CONFIG.families for t in CONFIG.trajectories}
    assert [clip_spec(i, CONFIG) for i in range(15)] == [clip_spec(i + 15, CONFIG) for i in range(15)]
    narrow = SyntheticConfig(families=["grow", "light"], trajectories=["pan"])
    assert {clip_spec(i, narrow) for i in range(2)} == {("grow", "pan"), ("light", "pan")}


def test_items_carry_identity_and_provenance() -> None:
    items = synthetic_items(3, CONFIG)
    assert [it.clip_id for it in items] == ["synthetic-7-00000", "synthetic-7-00001", "synthetic-7-00002"]
    item = items[2]
    assert item.source == "synthetic" and item.uri == "synthetic://7/2" and item.path is None
    family, trajectory = clip_spec(2, CONFIG)
    assert item.provenance == {"family": family, "trajectory": trajectory, "event_type": EVENT_TYPES[family],
                               "generator": "remind-curate synthetic v1", "license": "generated"}
    assert parse_uri(item.uri) == (7, 2)
    with pytest.raises(ValueError):
        parse_uri("synthetic://7")
    rendered = render_item(item, SyntheticConfig(seed=99), **SMALL)  # the item's own seed wins
    direct = render_synthetic_clip(2, CONFIG, **SMALL)
    assert rendered.seed == 7 and np.array_equal(rendered.frames, direct.frames)


def test_deterministic_in_seed_and_index() -> None:
    a, b = render_synthetic_clip(4, CONFIG, **SMALL), render_synthetic_clip(4, CONFIG, **SMALL)
    for name in ("frames", "camera_c2w", "intrinsics", "depth", "state", "object_mask", "points_world"):
        assert np.array_equal(getattr(a, name), getattr(b, name)), name
    assert np.array_equal(a.object_box, b.object_box, equal_nan=True) and a.caption == b.caption
    other_index = render_synthetic_clip(19, CONFIG, **SMALL)  # same (family, trajectory) as index 4
    assert (other_index.family, other_index.trajectory) == (a.family, a.trajectory)
    assert not np.array_equal(a.frames, other_index.frames)
    other_seed = render_synthetic_clip(4, SyntheticConfig(seed=8), **SMALL)
    assert not np.array_equal(a.frames, other_seed.frames)


def test_project_points_conventions() -> None:
    k = np.array([[500.0, 0, 400], [0, 500.0, 240], [0, 0, 1]])
    pose = np.eye(4)
    uv = project_points(np.array([[0.0, 0, 5], [1.0, -0.5, 5], [0, 0, -1]]), pose, k)
    assert uv.shape == (1, 3, 2)
    assert np.allclose(uv[0, :2], [[400, 240], [500, 190]]) and np.isnan(uv[0, 2]).all()
    moved = np.tile(np.eye(4), (2, 1, 1))
    moved[1, 0, 3] = 1.0  # camera 1 unit to the right: the point appears 100 px further left
    uv = project_points(np.array([[0.0, 0, 5]]), moved, np.stack([k, k]))
    assert np.allclose(uv[:, 0], [[400, 240], [300, 240]])


@pytest.mark.parametrize("index", [0, 1])  # (fill, static) and (translate, pan)
def test_markers_land_on_their_projection(index: int) -> None:
    clip = full_clip(index)
    assert clip.trajectory == ("static" if index == 0 else "pan")
    assert 4 <= len(clip.points_world) <= 8
    uv = project_points(clip.points_world, clip.camera_c2w, clip.intrinsics)
    h, w = clip.frames.shape[1:3]
    checked = 0
    for t in (0, 40, 80):
        for m in range(len(clip.points_world)):
            x, y = uv[t, m]
            if not (16 <= x < w - 16 and 16 <= y < h - 16):
                continue
            found = marker_centroid(clip.frames[t], uv[t, m])
            assert found is not None, (t, m)
            assert np.hypot(*(found - uv[t, m])) < 0.5, (t, m, found, uv[t, m])
            checked += 1
    assert checked >= 8


def test_h264_round_trip() -> None:
    clip = full_clip(1)
    buf = io.BytesIO()
    with av.open(buf, mode="w", format="mp4") as out:
        stream = out.add_stream("libx264", rate=16)
        stream.width, stream.height, stream.pix_fmt = 832, 480, "yuv420p"
        stream.options = {"preset": "veryfast", "crf": "23"}
        for frame in clip.frames:
            out.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        out.mux(stream.encode(None))
    buf.seek(0)
    with av.open(buf) as src:
        decoded = np.stack([f.to_ndarray(format="rgb24") for f in src.decode(video=0)])
    assert decoded.shape == clip.frames.shape
    mse = np.mean((decoded.astype(np.float64) - clip.frames) ** 2)
    assert 10 * np.log10(255.0 ** 2 / mse) > 30.0


def _check_geometry(clip: SyntheticClip, rng: np.random.Generator) -> None:
    n, h, w = clip.depth.shape
    assert np.array_equal(clip.camera_c2w[0], np.eye(4, dtype=np.float32))
    rot = clip.camera_c2w[:, :3, :3].astype(np.float64)
    assert np.allclose(rot @ rot.transpose(0, 2, 1), np.eye(3), atol=1e-5)
    assert np.allclose(np.linalg.det(rot), 1.0, atol=1e-5)
    assert np.allclose(clip.camera_c2w[:, 3], [0, 0, 0, 1])
    k = clip.intrinsics[0].astype(np.float64)
    assert np.allclose(clip.intrinsics, clip.intrinsics[0]) and np.isclose(k[0, 2], w / 2)
    wall, floor = clip.scene["wall_depth"], clip.scene["floor_height"]
    assert 4.0 <= wall <= 6.0 and np.isfinite(clip.depth).all() and (clip.depth > 0).all()
    on_floor = 0
    for t in rng.choice(n, 6, replace=False):
        ys, xs = rng.integers(0, h, 400), rng.integers(0, w, 400)
        rays = np.linalg.inv(k) @ np.stack([xs, ys, np.ones_like(xs)]).astype(np.float64)
        z = clip.depth[t, ys, xs].astype(np.float64)
        centre = clip.camera_c2w[t, :3, 3].astype(np.float64)
        world = (rot[t] @ (rays * z)).T + centre
        err = np.minimum(np.abs(world[:, 2] - wall), np.abs(world[:, 1] - floor))
        assert err.max() < 1e-4 * wall, t  # every pixel lies on the wall or on the floor
        d = rot[t] @ rays  # world ray directions with camera z = 1: the ray parameter is the z-depth
        with np.errstate(divide="ignore"):
            z_floor = np.where(d[1] > 1e-9, (floor - centre[1]) / d[1], np.inf)
        nearest = np.minimum((wall - centre[2]) / d[2], z_floor)
        assert np.abs(z - nearest).max() < 1e-4 * wall, t  # and it is the nearer of the two: visibility
        on_floor += int((np.abs(world[:, 1] - floor) < 1e-4).sum())
    assert on_floor > 0  # the floor is in view


def _check_event(clip: SyntheticClip) -> None:
    n, h, w = clip.object_mask.shape
    assert clip.event_type == EVENT_TYPES[clip.family]
    area = clip.object_mask.reshape(n, -1).mean(axis=1)
    assert 0.05 <= area[0] <= 0.35, area[0]
    assert (area > 0).mean() >= 0.75
    visible = area > 0
    assert np.isnan(clip.object_box[~visible]).all() and np.isfinite(clip.object_box[visible]).all()
    t = int(np.argmax(area))
    ys, xs = np.nonzero(clip.object_mask[t])
    assert np.array_equal(clip.object_box[t], [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1])
    s = clip.state.astype(np.float64)
    assert ((s >= 0) & (s <= 1)).all()
    if clip.family in ("fill", "grow", "translate"):
        assert (np.diff(s) > 0).all() and s[-1] - s[0] > 0.4
    elif clip.family == "light":
        assert (np.diff(s) < 0).all() and s[0] - s[-1] > 0.7
    else:
        step = np.diff(s) % 1.0
        assert np.allclose(step, step[0], atol=1e-5) and 0.005 < min(step[0], 1 - step[0])
    # the event keeps changing: its pixels differ visibly over 4 frames (a quarter second) most of the time
    a, b = clip.frames[:-4].astype(np.int16), clip.frames[4:].astype(np.int16)
    diff = np.abs(b - a).max(axis=3) > 12
    moving = (diff & (clip.object_mask[4:] | clip.object_mask[:-4])).reshape(n - 4, -1).sum(axis=1)
    assert (moving > 0.002 * h * w).mean() >= 0.75


def _check_trajectory(clip: SyntheticClip) -> None:
    angles = rotation_angles_deg(clip.camera_c2w)
    if clip.trajectory == "static":
        assert (angles == 0).all() and clip.loop_return_frame is None
    elif clip.trajectory == "pan":
        assert 15 < angles[-1] <= 25 and (np.diff(angles) > 0).all() and clip.loop_return_frame is None
    else:
        r = clip.loop_return_frame
        far = int(np.argmax(angles))
        assert angles.max() > 15 and r is not None and far < r
        assert angles[r] < 0.5 and r == far + 1 + int(np.argmin(angles[far + 1:]))
        away = clip.object_mask[far].mean() / max(clip.object_mask[0].mean(), 1e-9)
        assert away < 0.5  # the event (nearly) leaves the view while the camera is away


@pytest.mark.parametrize("index", range(15))
def test_clip_ground_truth(index: int) -> None:
    clip = full_clip(index)
    family, trajectory = clip_spec(index, CONFIG)
    assert (clip.index, clip.seed, clip.family, clip.trajectory) == (index, 7, family, trajectory)
    n, h, w = 81, 480, 832
    for name, shape, dtype in (("frames", (n, h, w, 3), np.uint8), ("camera_c2w", (n, 4, 4), np.float32),
                               ("intrinsics", (n, 3, 3), np.float32), ("depth", (n, h, w), np.float32),
                               ("state", (n,), np.float32), ("object_mask", (n, h, w), np.bool_),
                               ("object_box", (n, 4), np.float32)):
        arr = getattr(clip, name)
        assert arr.shape == shape and arr.dtype == dtype, name
    assert clip.points_world.dtype == np.float32 and clip.points_world.shape[1] == 3
    _check_geometry(clip, np.random.default_rng(index))
    _check_event(clip)
    _check_trajectory(clip)
    truth = clip.to_ground_truth()
    assert isinstance(truth, GroundTruth) and truth.event_type == clip.event_type
    assert truth.loop_return_frame == clip.loop_return_frame and truth.extra["family"] == family
    assert json.loads(json.dumps(truth.extra))["points_world"] == clip.points_world.astype(float).tolist()
    words = {"fill": "level", "translate": "position", "rotate": "phase", "grow": "radius", "light": "light level"}
    assert words[family] in clip.caption and "camera" in clip.caption.lower()
