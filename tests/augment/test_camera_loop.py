"""camera_loop: native loops keep the clip; virtual loops are exact rotations about the real camera."""
from __future__ import annotations

import math

import numpy as np

from schemas.cameras import rotation_angle_deg
from schemas.config import AugmentConfig, CameraLoopConfig
from tasks.augment import augment
from tasks.augment.camera_loop import loop_nodes, rot_y, yaw_limit
from tasks.augment.common import affine3, crop_affine
from tasks.sources.synthetic import project_points
from tests.augment.conftest import check_common, marker_centroid


def test_loop_nodes_take_the_first_minimum_after_the_peak():
    curve = np.array([0, 0, 1, 3, 5, 4, 2, 0.5, 0.5, 1, 2], float)
    assert loop_nodes(curve, start_tol=0.1, return_tol=1e-6) == (2, 4, 7)
    assert loop_nodes(np.zeros(11), 0.1, 1e-6) is None


def test_native_loop_returns_within_a_frame_of_the_generator(loop_clip):
    from tests.augment.conftest import window_from

    window = window_from(loop_clip)
    aug = augment(window, "camera_loop", AugmentConfig(), seed=0)
    check_common(aug, window)
    g = aug.graph
    assert aug.params["mode"] == "native"
    assert abs(g.event_frames["return"] - loop_clip.loop_return_frame) <= 1
    assert g.recovery_frames == [g.event_frames["return"]] and g.anchor_frames == [0]
    assert g.interruption.end_frame == g.event_frames["return"] - 1
    # no warp: the degraded clip is the clean one and so are its cameras
    assert np.array_equal(aug.degraded, loop_clip.frames)
    assert np.array_equal(aug.degraded_camera, loop_clip.camera_c2w)
    assert np.array_equal(aug.degraded_intrinsics, loop_clip.intrinsics)
    dist = np.array(g.per_frame["pose_distance_deg"])
    assert dist[g.interruption.start_frame - 1] < 0.5 and dist.max() > 10


def test_virtual_rotation_loop(static_window, static_clip):
    config = AugmentConfig()
    aug = augment(static_window, "camera_loop", config, seed=0)
    check_common(aug, static_window)
    g, p = aug.graph, aug.params
    assert p["mode"] == "rotation"
    start, ramp, hold = p["start_frame"], p["ramp_frames"], p["hold_frames"]
    ret = start + 2 * ramp + hold
    assert g.event_frames == {"away_start": start, "farthest": start + ramp, "return": ret}
    assert (g.interruption.start_frame, g.interruption.end_frame) == (start, ret - 1)
    assert g.anchor_frames == [0] and g.recovery_frames == [ret]
    # recovery = argmin of the pose distance (to the degraded frame 0) after the farthest frame
    dist = np.array(g.per_frame["pose_distance_deg"])
    far = int(np.argmax(dist))
    assert far == start + ramp and far + 1 + int(np.argmin(dist[far + 1:])) == ret
    assert (dist[:start] == 0).all() and (dist[ret:] == 0).all()
    assert math.isclose(dist.max(), abs(p["yaw_away_deg"] - p["yaw_start_deg"]), abs_tol=1e-3)
    # degraded camera = clean camera turned by R_y(psi); frame 0 keeps the clean frame-0 convention
    psi0 = math.radians(p["yaw_start_deg"])
    assert np.allclose(aug.degraded_camera[0, :3, :3], rot_y(psi0), atol=1e-5)
    assert np.allclose(aug.degraded_camera[:, :3, 3], static_clip.camera_c2w[:, :3, 3])
    angles = rotation_angle_deg(static_clip.camera_c2w[:, :3, :3], aug.degraded_camera[:, :3, :3])
    assert np.all(angles <= abs(p["yaw_start_deg"]) + abs(p["yaw_away_deg"]) + 1e-3)
    # K' is the centred crop_scale zoom of K, and every yaw keeps the virtual view inside the source frame
    h, w = static_window.frames.shape[1:3]
    zoom = affine3(crop_affine(config.camera_loop.crop_scale, ((w - 1) / 2, (h - 1) / 2), (h, w)))
    assert np.allclose(aug.degraded_intrinsics, zoom @ static_clip.intrinsics, rtol=1e-6)
    K, Kv = static_clip.intrinsics.astype(float), aug.degraded_intrinsics.astype(float)
    for yaw in (p["yaw_start_deg"], p["yaw_away_deg"]):
        assert abs(math.radians(yaw)) <= yaw_limit(K, Kv, (h, w), math.copysign(1.0, yaw)) + 1e-5  # params round to 1e-4 deg


def test_virtual_loop_markers_reproject(static_window, static_clip):
    aug = augment(static_window, "camera_loop", AugmentConfig(), seed=0)
    uv = project_points(static_clip.points_world, aug.degraded_camera, aug.degraded_intrinsics)
    radius = 9.5 * static_clip.scene["marker_radius_px"] / 3.5 * AugmentConfig().camera_loop.crop_scale
    h, w = static_window.frames.shape[1:3]
    checked = 0
    for t in range(0, 81, 3):
        for x, y in uv[t]:
            if radius + 2 < x < w - radius - 2 and radius + 2 < y < h - radius - 2:
                cx, cy = marker_centroid(aug.degraded[t], x, y, radius)
                assert abs(cx - x) < 0.25 and abs(cy - y) < 0.25, (t, x, y, cx, cy)
                checked += 1
    assert checked >= 10


def test_no_margin_and_no_native_loop_is_not_applicable(static_window):
    from tasks.augment import applicable

    config = AugmentConfig(camera_loop=CameraLoopConfig(crop_scale=1.0))
    assert applicable("camera_loop", static_window, config) is not None
    aug = augment(static_window, "camera_loop", config, seed=0)
    assert aug.fallback_from == "camera_loop" and aug.kind.value == "zoom"
