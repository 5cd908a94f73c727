"""choose_kind, applicable, fallbacks and determinism of tasks.augment."""
from __future__ import annotations

import json
from collections import Counter
from dataclasses import replace

import numpy as np
import pytest

from schemas.config_augment import AugmentConfig
from schemas.graph import InterruptionKind, NodeRole
from tasks.augment import FALLBACKS, KINDS, applicable, augment, choose_kind
from tests.augment.conftest import check_common


@pytest.mark.parametrize("seed", [0, 1, 2, 17, 12345])
def test_choose_kind_equal_weights_every_kind_in_proportion(tiny_window, seed):
    counts = Counter(choose_kind(tiny_window, AugmentConfig(), seed, ordinal).value for ordinal in range(24))
    assert set(counts) == set(KINDS)
    assert all(abs(c - 4) <= 1 for c in counts.values()), counts


def test_choose_kind_zero_weight_never_drawn(tiny_window):
    mixture = {k: 1.0 for k in KINDS} | {"zoom": 0.0, "none": 0.0}
    config = AugmentConfig(mixture=mixture)
    drawn = {choose_kind(tiny_window, config, seed, ordinal) for seed in range(3) for ordinal in range(200)}
    drawn |= {choose_kind(tiny_window, config, seed, None) for seed in range(300)}
    assert InterruptionKind.zoom not in drawn and InterruptionKind.none not in drawn
    assert len(drawn) == 4


def test_choose_kind_follows_weights_and_is_deterministic(tiny_window):
    config = AugmentConfig(mixture={"light_toggle": 3.0, "occluder": 1.0})
    counts = Counter(choose_kind(tiny_window, config, 5, i).value for i in range(400))
    assert set(counts) == {"light_toggle", "occluder"} and abs(counts["light_toggle"] - 300) <= 2
    assert choose_kind(tiny_window, config, 5, None) == choose_kind(tiny_window, config, 5, None)


def test_none_is_a_clean_control_with_full_visibility(static_window):
    aug = augment(static_window, "none", AugmentConfig(), seed=0)
    assert aug.kind is InterruptionKind.none and aug.degraded is None and aug.description == ""
    assert aug.degraded_camera is None and aug.degraded_intrinsics is None and aug.fallback_from is None
    assert aug.graph.roles() == [NodeRole.anchor] + [NodeRole.context] * 6
    assert aug.graph.per_frame["event_visibility"] == [1.0] * 81
    assert np.allclose(aug.graph.per_frame["event_state"], static_window.truth.state, atol=1e-5)


def test_no_dynamic_region_falls_back_to_a_full_frame_occluder(bare_window):
    """Nothing known moves: no view is known to leave the event, so exit_entry, camera_loop and zoom each record
    why not, and a full-frame occluder hides the whole frame."""
    config = AugmentConfig()
    assert "subject" in applicable("exit_entry", bare_window, config)
    aug = augment(bare_window, "exit_entry", config, seed=0)
    assert aug.kind is InterruptionKind.occluder and aug.fallback_from == "exit_entry"
    reasons = aug.params["fallback"]["reasons"]
    assert set(reasons) == {"exit_entry", "camera_loop", "zoom"}
    assert "unknown" in reasons["camera_loop"] and "unknown" in reasons["zoom"]
    assert aug.params["cover"] == "full_frame"
    check_common(aug, bare_window)


def test_fallback_skips_zero_weight_families(tiny_window):
    bare = replace(tiny_window, dynamic_box=None)
    config = AugmentConfig(mixture={"exit_entry": 1.0, "light_toggle": 1.0})
    aug = augment(bare, "exit_entry", config, seed=0)
    assert aug.kind is InterruptionKind.light_toggle and aug.fallback_from == "exit_entry"


@pytest.mark.parametrize("kind", KINDS[1:])
def test_same_seed_same_output_and_json_params(tiny_window, kind):
    a = augment(tiny_window, kind, AugmentConfig(), seed=3)
    b = augment(tiny_window, kind, AugmentConfig(), seed=3)
    check_common(a, tiny_window)
    assert a.kind.value == kind  # the small box on the left lets every family hide it
    assert np.array_equal(a.degraded, b.degraded)
    assert a.graph == b.graph and a.params == b.params and a.fallback_from == b.fallback_from
    json.dumps(a.params)
    json.dumps(a.graph.model_dump(mode="json"))


@pytest.mark.parametrize("kind", ["light_toggle", "occluder", "zoom", "camera_loop"])
def test_every_seed_hides_a_whole_chunk_between_anchor_and_recovery(tiny_window, kind):
    seen = set()
    for seed in range(12):
        aug = augment(tiny_window, kind, AugmentConfig(), seed=seed)
        check_common(aug, tiny_window)
        assert aug.kind.value == kind
        seen.add((aug.graph.interruption.start_frame, aug.graph.interruption.end_frame))
    assert len(seen) >= 3  # the seed moves the interval


def test_fallback_order_is_view_moving_first():
    assert FALLBACKS["exit_entry"][0] == "camera_loop" and FALLBACKS["occluder"] == ("light_toggle",)
