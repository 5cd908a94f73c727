"""The default scene-cut detector is a cascade: a cheap screen rules frames out and TransNetV2 scores only the
windows of its own sliding scan that hold a candidate. It must report what a full TransNetV2 scan reports, on
every labelled real clip and on edits of them (a dissolve, a fade to black and back, a flash, a whip pan,
hand-held walking), while scoring fewer frames."""
from __future__ import annotations

import numpy as np
import pytest
import yaml

from schemas.config import SceneCutConfig
from tasks.prefilter.cut_screen import candidate_mask
from tasks.prefilter.cuts import detect_transitions
from tasks.prefilter.transnet import BLOCK, TransNetV2Detector, _runs, blocks_to_score, downscale, scored_frames
from tests.prefilter.edited_footage import CASES, REAL, decoded

LABELLED = sorted(yaml.safe_load((REAL / "labels.yaml").read_text())["clips"])
PIPELINE_FRAMES = 162  # what the default ingest decodes (two 81-frame windows)


@pytest.fixture(scope="module")
def detector() -> TransNetV2Detector:
    return TransNetV2Detector(threshold=0.5, threads=1)


def _frames(case: str) -> np.ndarray:
    return CASES[case]() if case in CASES else decoded(case, PIPELINE_FRAMES)


def _transitions(prob: np.ndarray) -> list[tuple[int, int]]:
    """What ``TransNetV2Detector.detect`` reports: runs above the threshold with a shot on both sides."""
    return [(a, b) for a, b in _runs(prob > 0.5) if a > 0 and b < len(prob) - 1]


def _full_from(detector: TransNetV2Detector, small: np.ndarray, prob: np.ndarray, blocks: set[int]) -> np.ndarray:
    """The full scan's probabilities: the blocks the cascade scored, plus the blocks it skipped, scored now."""
    full = prob.copy()
    for b, scores in detector.score_blocks(small, set(range(-(-len(small) // BLOCK))) - blocks).items():
        full[b * BLOCK:(b + 1) * BLOCK] = scores[:len(full) - b * BLOCK]
    return full


@pytest.mark.slow
@pytest.mark.timeout(300)
@pytest.mark.parametrize("case", LABELLED + sorted(CASES))
def test_the_cascade_reports_the_transitions_of_a_full_scan(detector: TransNetV2Detector, case: str) -> None:
    frames = _frames(case)
    small = downscale(frames)
    prob, blocks = detector.scan_small(small, candidate_mask(small))
    full = _full_from(detector, small, prob, blocks)  # each block is scored once: the test costs one full scan
    assert _transitions(prob) == _transitions(full), f"cascade scored blocks {sorted(blocks)}"


def test_a_block_the_cascade_scores_is_the_full_scans_and_the_public_path_agrees(detector) -> None:
    """On the edited montage (cuts, a dissolve, a fade): the cascade's scores are the full scan's bit for bit where
    it scored, unscored frames are 0, and detect_transitions (lighting check included) gives the same transitions
    and records the share of frames TransNetV2 scored."""
    frames = decoded("edit-montage-dissolve-fade.mp4", 200)
    full = detector.probabilities(frames)
    cascade = detector.detect(frames, 16.0)
    scored = cascade.probabilities != 0
    np.testing.assert_array_equal(cascade.probabilities[scored], full[scored])
    assert cascade.transitions and _runs(full > 0.5) == _runs(cascade.probabilities > 0.5)
    config = SceneCutConfig()
    public = detect_transitions(frames, 16.0, config)
    assert public.transitions == detect_transitions(frames, 16.0, config, scan="full").transitions
    assert public.model_fraction(len(frames)) == round(cascade.model_frames / len(frames), 4)
    assert detect_transitions(frames, 16.0, config, scan="full").model_fraction(len(frames)) == 1.0


def test_a_still_shot_costs_no_transnetv2_window(detector) -> None:
    frames = decoded("tree-11s.mp4", PIPELINE_FRAMES)  # a static camera, leaves fluttering
    result = detector.detect(frames, 16.0)
    assert result.transitions == [] and result.model_frames == 0 and not result.probabilities.any()


def test_a_transition_across_a_block_edge_pulls_in_the_neighbouring_block(detector) -> None:
    """A dissolve ending at frame 50 (the edge of TransNetV2's first two blocks), and the screen's candidates given
    in the block holding the transition only: the cascade scores the neighbouring block too (the transition may
    go on there), and reports the full scan's transition."""
    a, b = decoded("box.mp4")[:60], decoded("vtest-11s.mp4")[:60]
    mix = np.linspace(0, 1, 12)[:, None, None, None]
    frames = np.concatenate([a[:44], (a[44:56] * (1 - mix) + b[:12] * mix).astype(np.uint8), b[12:]])
    small = downscale(frames)
    full = detector.scan_small(small, None)[0]
    (start, end), = _runs(full > 0.5)
    assert end == BLOCK - 1 or start == BLOCK or start < BLOCK <= end, (start, end)  # it reaches the edge
    only_one = np.zeros(len(frames), bool)
    only_one[start] = True
    prob, blocks = detector.scan_small(small, only_one)
    assert blocks == {0, 1} and _runs(prob > 0.5) == [(start, end)]


def test_the_screen_leaves_transnetv2_fewer_frames_than_a_full_scan() -> None:
    """Equivalence is only worth something if the cascade skips work: still shots (a tree in wind, a surveillance
    square, a screencast, a near-static Lego model) cost no window, and over the whole set the screen leaves
    TransNetV2 under 80% of the frames (the set is mostly hand-held and edited footage, the worst case)."""
    share = {}
    for case in LABELLED + sorted(CASES):
        small = downscale(_frames(case))
        share[case] = scored_frames(blocks_to_score(candidate_mask(small)), len(small)) / len(small)
    assert all(share[c] == 0 for c in ("tree-11s.mp4", "vtest-11s.mp4", "screencast-hello.mp4", "lego-static.mp4"))
    assert np.mean(list(share.values())) < 0.8, share
