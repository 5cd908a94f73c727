"""exit_entry: both clips follow the subject; the degraded crop pans until it has left for a whole chunk and comes
back. The subject comes from the generator's boxes or from the template tracker seeded by the motion mask."""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from schemas.config_augment import AugmentConfig, ExitEntryConfig
from tasks.augment import augment
from tasks.augment.tracker import track_subject
from tests.augment.conftest import check_common, footprint_visibility, window_from


@pytest.fixture(scope="module")
def result(subject_clip):
    window = window_from(subject_clip)
    return window, augment(window, "exit_entry", AugmentConfig(), seed=0)


def test_subject_leaves_for_a_whole_chunk_and_visibility_matches_the_masks(result, subject_clip):
    window, aug = result
    check_common(aug, window)
    g, p = aug.graph, aug.params
    assert p["subject_source"] == "truth_box"
    ev = g.event_frames
    assert g.interruption.start_frame <= ev["pan_start"] < ev["exit_frame"] <= ev["hidden_start"]
    assert ev["hidden_end"] < ev["entry_frame"] <= g.interruption.end_frame
    vis = np.array(g.per_frame["event_visibility"])
    for t in range(0, 81, 2):  # the degraded crop is degraded_K K^-1
        H = aug.degraded_intrinsics[t].astype(np.float64) @ np.linalg.inv(subject_clip.intrinsics[t])
        assert abs(footprint_visibility(subject_clip.object_mask[t], H) - vis[t]) <= 0.02, t
    # the clean clip follows the subject: it is in view there (the crop holds the whole ball)
    for t in range(0, 81, 4):
        Hc = aug.clean_intrinsics[t].astype(np.float64) @ np.linalg.inv(subject_clip.intrinsics[t])
        assert footprint_visibility(subject_clip.object_mask[t], Hc) >= 0.95, t
    assert np.array_equal(aug.degraded_camera, subject_clip.camera_c2w)
    assert len(p["subject_boxes"]) == 81 and len(g.per_frame["subject_x0"]) == 81


def test_template_tracker_follows_the_subject_from_the_motion_mask(subject_clip):
    window = replace(window_from(subject_clip, with_truth=False, clip_id="local-ball"),
                     dynamic_mask=subject_clip.object_mask[0][::4, ::4])
    boxes, origin = track_subject(window)
    assert origin == "dynamic_mask"
    centres = (boxes[:, :2] + boxes[:, 2:]) / 2
    truth = (subject_clip.object_box[:, :2] + subject_clip.object_box[:, 2:]) / 2
    assert np.median(np.abs(centres - truth)) < 6 and np.abs(centres - truth).max() < 20
    assert np.array_equal(boxes, track_subject(window)[0])  # deterministic
    aug = augment(window, "exit_entry", AugmentConfig(), seed=0)
    check_common(aug, window)
    assert aug.params["subject_source"] == "template_tracker_from_dynamic_mask"
    assert np.allclose(aug.params["subject_boxes"], np.round(boxes, 1))


def test_subject_too_large_to_leave_falls_back(static_window):
    aug = augment(static_window, "exit_entry", AugmentConfig(exit_entry=ExitEntryConfig(crop_scale=1.2)), seed=0)
    assert aug.fallback_from == "exit_entry" and "exit_entry" in aug.params["fallback"]["reasons"]
