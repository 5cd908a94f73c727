"""camera_loop: native loops first, virtual turns only where the view can leave the region, recovery by the
Appendix F.2 rule (the frame after the farthest one whose pose is nearest to the anchor view)."""
from __future__ import annotations

import math
from dataclasses import replace

import numpy as np

from schemas.cameras import rotation_angle_deg
from schemas.config_augment import AugmentConfig
from tasks.augment import augment
from tasks.augment.camera_loop import f2_return
from tasks.sources.synthetic import project_points
from tests.augment.conftest import check_common, footprint_visibility, marker_centroid, window_from


def angle_to(c2w: np.ndarray, ref: int) -> np.ndarray:
    rots = np.asarray(c2w, np.float64)[:, :3, :3]
    return np.asarray(rotation_angle_deg(np.broadcast_to(rots[ref], rots.shape), rots), np.float64)


def test_f2_rule_takes_the_first_nearest_frame_after_the_farthest():
    dist = np.array([0, 0, 3, 9, 12, 7, 2, 0.5, 0.5, 1.0, 4.0])
    assert f2_return(dist, 1) == (4, 7)


def test_native_loop_recovers_where_the_generators_poses_return(loop_clip):
    window = window_from(loop_clip)
    aug = augment(window, "camera_loop", AugmentConfig(), seed=0)
    check_common(aug, window)
    g, p = aug.graph, aug.params
    assert p["mode"] == "native" and np.array_equal(aug.degraded, loop_clip.frames)
    anchor = g.anchor_frames[-1]
    dist = angle_to(loop_clip.camera_c2w, anchor)  # truth by the F.2 rule, from the generator's own poses
    far = anchor + 1 + int(np.argmax(dist[anchor + 1:]))
    truth = far + 1 + int(np.argmin(dist[far + 1:]))
    assert abs(g.event_frames["return"] - truth) <= 1 and abs(loop_clip.loop_return_frame - truth) <= 1
    assert p["residual_deg"] <= AugmentConfig().camera_loop.return_tolerance_deg
    assert math.isclose(p["residual_deg"], dist[g.event_frames["return"]], abs_tol=1e-3)
    # visibility: every pixel of the generator's anchor mask, lifted to 3D with its depth and projected by the
    # generator's own projector into each frame: the fraction that lands inside it
    vis = np.array(g.per_frame["event_visibility"])
    ys, xs = np.nonzero(loop_clip.object_mask[anchor])
    z = loop_clip.depth[anchor][ys, xs].astype(np.float64)
    K, c2w = loop_clip.intrinsics[anchor].astype(np.float64), loop_clip.camera_c2w[anchor].astype(np.float64)
    cam = np.stack([(xs - K[0, 2]) / K[0, 0] * z, (ys - K[1, 2]) / K[1, 1] * z, z], 1)
    world = cam @ c2w[:3, :3].T + c2w[:3, 3]
    uv = project_points(world, loop_clip.camera_c2w, loop_clip.intrinsics)
    inside = (uv[..., 0] >= -0.5) & (uv[..., 0] <= 831.5) & (uv[..., 1] >= -0.5) & (uv[..., 1] <= 479.5)
    assert np.abs(inside.mean(axis=1) - vis).max() <= 0.02
    empty = loop_clip.object_mask.reshape(81, -1).sum(axis=1) == 0  # the generator draws nothing of it there
    assert (vis[empty] <= 0.02).all() and empty[g.event_frames["hidden_start"]:g.event_frames["hidden_end"] + 1].all()


def test_a_loop_that_never_returns_is_not_a_loop(loop_clip):
    c2w = loop_clip.camera_c2w.copy()
    far = int(np.argmax(angle_to(c2w, 0)))
    c2w[far:] = c2w[far]  # the camera turns away and stays there
    window = replace(window_from(loop_clip), camera_c2w=c2w, intrinsics=loop_clip.intrinsics)
    aug = augment(window, "camera_loop", AugmentConfig(), seed=0)
    assert aug.fallback_from == "camera_loop"
    assert "not a loop" in aug.params["fallback"]["reasons"]["camera_loop"]


def small_subject_window(static_clip):
    """Real-footage style: pixels, cameras and a motion box (a small subject on the left), no truth."""
    window = window_from(static_clip, with_truth=False, clip_id="local-small")
    return replace(window, camera_c2w=static_clip.camera_c2w, intrinsics=static_clip.intrinsics,
                   dynamic_box=(150, 170, 280, 330))


def test_virtual_turn_leaves_the_region_and_returns(static_clip):
    window = small_subject_window(static_clip)
    aug = augment(window, "camera_loop", AugmentConfig(), seed=0)
    check_common(aug, window)
    g, p = aug.graph, aug.params
    assert p["mode"] == "rotation" and "native_rejected" in p
    # the clean clip is the same crop: its intrinsics are A0 K, the degraded camera starts there and turns back
    A0 = aug.clean_affines[0]
    assert np.allclose(aug.clean_intrinsics[0], np.vstack([A0, [0, 0, 1]]) @ static_clip.intrinsics[0], atol=1e-3)
    outside = np.r_[0:g.interruption.start_frame, g.interruption.end_frame + 1:81]
    assert np.allclose(aug.degraded_camera[outside], static_clip.camera_c2w[outside], atol=1e-6)
    assert np.allclose(aug.degraded_intrinsics, aug.clean_intrinsics, atol=1e-4)
    dist = np.array(g.per_frame["pose_distance_deg"])
    far, ret = f2_return(dist, g.anchor_frames[-1])
    assert g.event_frames["return"] == ret and dist[ret] == 0 and g.recovery_frames == [g.interruption.end_frame + 1]
    # visibility: the motion box inside the source polygon the degraded view shows (from the packed cameras)
    box = np.zeros((480, 832), bool)
    box[170:330, 150:280] = True
    vis = np.array(g.per_frame["event_visibility"])
    for t in range(0, 81, 2):
        H = (aug.degraded_intrinsics[t].astype(np.float64) @ aug.degraded_camera[t, :3, :3].T.astype(np.float64)
             @ static_clip.camera_c2w[t, :3, :3].astype(np.float64) @ np.linalg.inv(static_clip.intrinsics[t]))
        assert abs(footprint_visibility(box, H) - vis[t]) <= 0.02, t
    # markers land where the degraded camera says
    uv = project_points(static_clip.points_world, aug.degraded_camera, aug.degraded_intrinsics)
    radius = 9.5 * static_clip.scene["marker_radius_px"] / 3.5 * p["crop_scale"]
    checked = 0
    for t in range(g.interruption.start_frame, g.interruption.end_frame + 1, 3):
        for x, y in uv[t]:
            if radius + 2 < x < 832 - radius - 2 and radius + 2 < y < 480 - radius - 2:
                cx, cy = marker_centroid(aug.degraded[t], x, y, radius)
                assert abs(cx - x) < 0.3 and abs(cy - y) < 0.3, (t, x, y, cx, cy)
                checked += 1
    assert checked >= 5


def test_a_region_too_large_to_leave_falls_back(static_window):
    aug = augment(static_window, "camera_loop", AugmentConfig(), seed=0)
    assert aug.fallback_from == "camera_loop"
    assert "can turn off it" in aug.params["fallback"]["reasons"]["camera_loop"]
