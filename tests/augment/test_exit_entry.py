"""exit_entry: the crop lets the tracked subject leave the view and come back; boxes and intrinsics are exact."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from schemas.config import AugmentConfig, ExitEntryConfig
from tasks.augment import applicable, augment
from tasks.sources.synthetic import project_points
from tests.augment.conftest import check_common, marker_centroid, window_from


@pytest.fixture(scope="module")
def result(subject_clip):
    window = window_from(subject_clip)
    return window, augment(window, "exit_entry", AugmentConfig(), seed=0)


def test_hidden_interval_is_the_interruption(result):
    window, aug = result
    check_common(aug, window)
    assert aug.kind.value == "exit_entry" and aug.fallback_from is None
    g = aug.graph
    exit_, entry = g.event_frames["exit_frame"], g.event_frames["entry_frame"]
    assert (g.interruption.start_frame, g.interruption.end_frame) == (exit_, entry - 1)
    assert g.anchor_frames == [exit_ - 1] and g.recovery_frames == [entry]
    visible = np.array(g.per_frame["subject_visible"])
    assert visible[exit_ - 1] == 1 and visible[entry] == 1 and (visible[exit_:entry] == 0).all()
    assert entry - exit_ >= AugmentConfig().exit_entry.min_hidden_frames == 6
    assert aug.params["hidden_frames"] == entry - exit_


def test_subject_pixels_follow_the_crop(result, subject_clip):
    window, aug = result
    g = aug.graph
    K, Kd = subject_clip.intrinsics.astype(float), aug.degraded_intrinsics.astype(float)
    scale = AugmentConfig().exit_entry.crop_scale
    assert np.allclose(Kd[:, 0, 0], K[:, 0, 0] * scale, rtol=1e-6)
    assert np.array_equal(aug.degraded_camera, subject_clip.camera_c2w)  # a crop does not move the camera
    h, w = window.frames.shape[1:3]
    boxes = np.array([g.per_frame[f"subject_{k}"] for k in ("x0", "y0", "x1", "y1")], dtype=float).T
    exit_, entry = g.event_frames["exit_frame"], g.event_frames["entry_frame"]
    for t in range(81):
        A = (Kd[t] @ np.linalg.inv(K[t]))[:2]  # the crop affine, recovered from the intrinsics
        mask = cv2.warpAffine(subject_clip.object_mask[t].astype(np.uint8), A, (w, h), flags=cv2.INTER_NEAREST)
        if exit_ <= t < entry:
            assert not mask.any(), t
        elif mask.any():
            ys, xs = np.nonzero(mask)
            inside = boxes[t, 0] > 1 and boxes[t, 1] > 1 and boxes[t, 2] < w - 1 and boxes[t, 3] < h - 1
            if inside:  # the mapped box bounds the warped mask to within a pixel
                assert abs(xs.min() - boxes[t, 0]) <= 1.5 and abs(xs.max() + 1 - boxes[t, 2]) <= 1.5
                assert abs(ys.min() - boxes[t, 1]) <= 1.5 and abs(ys.max() + 1 - boxes[t, 3]) <= 1.5


def test_markers_reproject(result, subject_clip):
    window, aug = result
    uv = project_points(subject_clip.points_world, aug.degraded_camera, aug.degraded_intrinsics)
    radius = 9.5 * subject_clip.scene["marker_radius_px"] / 3.5 * AugmentConfig().exit_entry.crop_scale
    h, w = window.frames.shape[1:3]
    checked = 0
    for t in range(0, 81, 2):
        for x, y in uv[t]:
            if radius + 2 < x < w - radius - 2 and radius + 2 < y < h - radius - 2:
                cx, cy = marker_centroid(aug.degraded[t], x, y, radius)
                assert abs(cx - x) < 0.15 and abs(cy - y) < 0.15, (t, x, y, cx, cy)
                checked += 1
    assert checked >= 5


def test_subject_too_large_is_not_applicable(tiny_window):
    big = AugmentConfig(exit_entry=ExitEntryConfig(crop_scale=1.05))
    assert "too large" in applicable("exit_entry", tiny_window, big)
    aug = augment(tiny_window, "exit_entry", big, seed=0)
    assert aug.fallback_from == "exit_entry" and aug.kind.value != "exit_entry"
