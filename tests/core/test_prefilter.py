"""The cheap pre-filter: scene cuts after frame-rate normalisation, and motion occupancy."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from schemas.config import Config, MotionConfig, NormaliseConfig, SceneCutConfig
from tasks.decode import cut_windows, find_cuts, window_starts
from tasks.prefilter.motion import measure, measure_motion
from tasks.records import SourceItem
from tasks.sources.synthetic import render_synthetic_clip
from tasks.clip import Clip
from tests.media import montage, scene_frames


def _upscale(frames: np.ndarray) -> np.ndarray:
    return np.stack([cv2.resize(f, (832, 480)) for f in frames])


PYSCENEDETECT = SceneCutConfig(detector="adaptive")  # TransNetV2, the default, is tested in tests/prefilter/


def test_cuts_found_at_shot_boundaries():
    cuts = find_cuts(montage(40, 3, height=180, width=320), 16.0, PYSCENEDETECT)
    assert cuts == [40, 80]


def test_no_cut_in_a_continuous_shot():
    assert find_cuts(scene_frames(90, height=180, width=320, shift=3), 16.0, PYSCENEDETECT) == []


def test_window_starts_reject_and_split_policies():
    norm = NormaliseConfig(windows_per_video=3, window_stride_frames=81)
    assert window_starts(250, [100], norm, "reject") == [(0, None), (81, 100), (162, None)]
    assert window_starts(250, [100], norm, "split") == [(0, None), (100, None)]  # one window per shot fits
    assert window_starts(300, [100], NormaliseConfig(windows_per_video=3, window_stride_frames=60), "split") == [
        (0, None), (100, None), (160, None)]


def test_cut_windows_rejects_windows_containing_a_cut_with_the_frame():
    frames = _upscale(montage(60, 3, height=180, width=320))
    clip = Clip(SourceItem("x", "local", "x.mp4"), frames=frames, cuts=[60, 120])
    clip = cut_windows(clip, Config())
    assert not clip.windows
    assert [(o.reason, o.window) for o in clip.outcomes] == [("scene_cut", 0), ("scene_cut", 1)]
    assert "frame 60" in clip.outcomes[0].error


def test_too_short_is_rejected_with_reason():
    clip = Clip(SourceItem("x", "local", "x.mp4"), frames=_upscale(scene_frames(30)), cuts=[])
    clip = cut_windows(clip, Config())
    assert clip.outcomes[0].reason == "too_short" and clip.outcomes[0].window is None


def test_static_scene_and_tiny_motion_are_rejected():
    still = _upscale(np.repeat(scene_frames(1), 81, axis=0))
    tiny = still.copy()
    for i in range(81):
        cv2.circle(tiny[i], (100 + 2 * i, 100), 6, (255, 255, 255), -1)
    moving = _upscale(scene_frames(81))
    reasons = []
    for frames in (still, tiny, moving):
        clip = Clip(SourceItem("x", "local", "x.mp4"), frames=frames, cuts=[])
        clip = measure_motion(cut_windows(clip, Config()), Config())
        reasons.append(clip.outcomes[0].reason if clip.outcomes else "accepted")
    assert reasons == ["static_scene", "tiny_motion", "accepted"]


@pytest.mark.parametrize("index", range(15))
def test_every_synthetic_family_and_trajectory_passes(index, synthetic_config):
    clip = render_synthetic_clip(index, synthetic_config)
    stats = measure(clip.frames, MotionConfig())
    config = MotionConfig()
    assert config.min_spatial_occupancy <= stats.spatial_occupancy <= config.max_spatial_occupancy
    assert stats.temporal_occupancy >= config.min_temporal_occupancy
    truth_box = clip.object_box[0]
    x0, y0, x1, y1 = stats.box
    if clip.trajectory == "static":  # the measured dynamic region overlaps the object (a part of it changes)
        assert x0 < truth_box[2] and truth_box[0] < x1 and y0 < truth_box[3] and truth_box[1] < y1
