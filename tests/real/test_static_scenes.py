"""Near-static real windows are turned down by the motion stage; every window a person keeps passes it.

Labels: tests/data/real/labels.yaml (a person's, from frames). The threshold's distributions are printed by
``python -m benchmarks.static_scenes``.
"""
from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.prefilter import LABELS, load_labels, window_labels
from schemas.config import Config
from tasks.clip import Clip
from tasks.decode import cut_windows
from tasks.prefilter.motion import measure_motion
from tasks.records import SourceItem
from tasks.video_io import decode_normalised

ROWS = [r for r in window_labels(load_labels()) if r.start is not None
        and (r.keep or "near_static" in r.category or "small_subject" in r.category)]


@pytest.fixture(scope="module")
def motion_outcome():
    decoded: dict[str, object] = {}

    def run(clip_name: str, start: int) -> tuple[str, dict]:
        if clip_name not in decoded:
            decoded.clear()
            decoded[clip_name] = decode_normalised(LABELS.parent / clip_name, 16, 480, 832, 60.0, 120.0, 162).frames
        frames = decoded[clip_name][start:start + 81]
        clip = Clip(SourceItem(f"real-{Path(clip_name).stem}", "local", clip_name), frames=frames, cuts=[])
        clip = measure_motion(cut_windows(clip, Config()), Config())
        if clip.windows:
            return "accepted", clip.windows[0].scores
        return clip.outcomes[0].reason, clip.outcomes[0].scores or {}

    return run


def test_the_new_near_static_clips_are_labelled() -> None:
    clips = load_labels()["clips"]
    for name in ("edit-vtest-lawn.mp4", "edit-vtest-far-walker.mp4"):
        assert "near_static" in clips[name]["category"] and (LABELS.parent / name).stat().st_size < 1_000_000


@pytest.mark.parametrize("row", ROWS, ids=lambda r: f"{r.clip}@{r.start}")
def test_motion_stage_agrees_with_the_person(row, motion_outcome) -> None:
    outcome, scores = motion_outcome(row.clip, row.start)
    if row.keep:
        assert outcome == "accepted", (outcome, scores)
    else:
        assert outcome in row.reasons or (outcome == "static_scene" and "tiny_motion" in row.reasons), (outcome, scores)


def test_a_distant_walker_is_near_static_by_its_extent(motion_outcome) -> None:
    # Its dynamic region (the path it walks) is large and it moves all the time: only the extent turns it down.
    outcome, scores = motion_outcome("edit-vtest-far-walker.mp4", 0)
    motion = Config().prefilter.motion
    assert outcome == "static_scene"
    assert scores["motion_spatial_occupancy"] >= motion.min_spatial_occupancy
    assert scores["motion_temporal_occupancy"] >= motion.min_temporal_occupancy
    assert scores["dynamic_extent"] < motion.min_dynamic_extent
