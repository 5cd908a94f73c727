"""zoom: a crop that zooms away from the dynamic region and back; intrinsics follow the crop, visibility from the
generator's masks, markers reproject."""
from __future__ import annotations

import numpy as np

from schemas.config_augment import AugmentConfig
from tasks.augment import augment
from tasks.augment.common import crop_affine
from tasks.sources.synthetic import project_points
from tests.augment.conftest import check_common, footprint_visibility, marker_centroid


def test_crop_affine_conventions():
    A = crop_affine(2.0, (415.5, 239.5), (480, 832))
    assert np.allclose(A @ [415.5, 239.5, 1], [415.5, 239.5])  # the centre stays
    assert np.allclose(A @ [207.5, 119.5, 1], [-0.5, -0.5])  # the window's edge maps to the edge


def test_zoom_leaves_the_region_and_visibility_matches_the_masks(static_window, static_clip):
    aug = augment(static_window, "zoom", AugmentConfig(), seed=0)
    check_common(aug, static_window)
    g = aug.graph
    scale = np.array(g.per_frame["crop_scale"])
    start, end = g.interruption.start_frame, g.interruption.end_frame
    assert (scale[:start] == 1).all() and (scale[end + 1:] == 1).all()
    assert scale.max() == aug.params["peak_scale"] >= aug.params["drawn_peak_scale"]
    assert np.array_equal(aug.degraded_camera, static_clip.camera_c2w)
    vis = np.array(g.per_frame["event_visibility"])
    for t in range(0, 81, 2):  # the crop is degraded_K K^-1: what it shows of the full-resolution mask
        H = aug.degraded_intrinsics[t].astype(np.float64) @ np.linalg.inv(static_clip.intrinsics[t])
        truth = footprint_visibility(static_clip.object_mask[t], H)
        assert abs(truth - vis[t]) <= 0.02, (t, truth, vis[t])


def test_markers_reproject_within_a_fraction_of_a_pixel(static_window, static_clip):
    aug = augment(static_window, "zoom", AugmentConfig(), seed=0)
    g = aug.graph
    uv = project_points(static_clip.points_world, aug.degraded_camera, aug.degraded_intrinsics)
    pad = 9.5 * static_clip.scene["marker_radius_px"] / 3.5  # inside the white pad, outside the black ring
    h, w = static_window.frames.shape[1:3]
    checked = 0
    for t in range(g.interruption.start_frame, g.interruption.end_frame + 1, 2):
        radius = pad * g.per_frame["crop_scale"][t]
        for x, y in uv[t]:
            if radius + 2 < x < w - radius - 2 and radius + 2 < y < h - radius - 2:
                cx, cy = marker_centroid(aug.degraded[t], x, y, radius)
                assert abs(cx - x) < 0.15 and abs(cy - y) < 0.15, (t, x, y, cx, cy)
                checked += 1
    assert checked >= 10
