"""Each regime on hand-built graphs: the slots (sources, positions), sigmas, loss masks and attention it produces."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.training.graphs import CLEAN, LATE_LOOP, OCCLUDER
from training.config import CurriculumConfig
from training.curriculum import Plan, assemble, plan_regime, sample_regime, sample_sigma

CFG = CurriculumConfig()
SEEDS = range(40)


def _plan(regime: str, graph, seed: int, **kwargs) -> Plan:
    return plan_regime(regime, graph, np.random.default_rng(seed), CFG, **kwargs)


def test_all_history_is_the_whole_clip_chunk_causal() -> None:
    plan = _plan("all_history", OCCLUDER, 0)
    assert [s.chunk for s in plan.slots] == list(range(7))
    assert plan.frame_positions() == list(range(21))
    assert plan.frame_slots() == [c for c in range(7) for _ in range(3)]
    assert all(s.supervised and s.source == "observed" and 0 < s.sigma < 1 for s in plan.slots)
    assert len({s.sigma for s in plan.slots}) == 7  # independent per-chunk timesteps
    np.testing.assert_array_equal(plan.slot_mask(), np.tril(np.ones((7, 7), dtype=bool)))


@pytest.mark.parametrize("seed", SEEDS)
def test_noisy_memory_puts_past_chunks_at_high_noise_and_keeps_an_anchor(seed: int) -> None:
    plan = _plan("noisy_memory", OCCLUDER, seed)
    past, suffix = plan.slots[:4], plan.slots[4:]  # frontier = recovery chunk 4
    assert [s.chunk for s in plan.slots] == list(range(7)) and plan.frame_positions() == list(range(21))
    assert not any(s.supervised for s in past) and all(s.supervised for s in suffix)
    noisy = [s for s in past if s.sigma > 0]
    assert noisy and all(CFG.noisy_memory.sigma_min <= s.sigma <= CFG.noisy_memory.sigma_max for s in noisy)
    assert any(s.sigma == 0.0 for s in past if s.chunk in (0, 1))  # an anchor stays clean
    assert not any(s.dropped for s in plan.slots)


@pytest.mark.parametrize("seed", SEEDS)
def test_node_drop_replaces_degraded_nodes_by_noise_and_keeps_an_anchor(seed: int) -> None:
    plan = _plan("node_drop", OCCLUDER, seed)
    by_chunk = {s.chunk: s for s in plan.slots}
    for chunk in (2, 3):  # the degraded nodes
        assert by_chunk[chunk].dropped and by_chunk[chunk].sigma == 1.0 and not by_chunk[chunk].supervised
    assert any(not by_chunk[a].dropped and by_chunk[a].sigma == 0.0 for a in (0, 1))
    assert all(by_chunk[c].supervised and not by_chunk[c].dropped for c in (4, 5, 6))
    clean = _plan("node_drop", CLEAN, seed)
    assert not clean.slots[0].dropped  # the only anchor survives
    assert any(s.dropped for s in clean.slots)  # something is always dropped
    first_supervised = min(i for i, s in enumerate(clean.slots) if s.supervised)
    assert 2 <= first_supervised and all(s.supervised for s in clean.slots[first_supervised:])


@pytest.mark.parametrize("seed", SEEDS)
def test_v2v_frontier_supervises_only_the_recovery_suffix(seed: int) -> None:
    plan = _plan("v2v_frontier", LATE_LOOP, seed)
    assert [s.supervised for s in plan.slots] == [False] * 5 + [True] * 2
    assert all(s.sigma == 0.0 for s in plan.slots[:5])
    assert len({s.source for s in plan.slots}) == 1  # the suffix continues the prefix's own video
    assert plan.frame_positions() == list(range(21))
    assert _plan("v2v_frontier", LATE_LOOP, seed, has_degraded=False).slots[0].source == "clean"


def test_v2v_frontier_draws_both_clean_and_degraded_prefixes() -> None:
    sources = {_plan("v2v_frontier", OCCLUDER, seed).slots[0].source for seed in SEEDS}
    assert sources == {"clean", "observed"}


@pytest.mark.parametrize("seed", SEEDS)
def test_reference_cache_keeps_clean_references_at_old_positions_and_shifts_the_target(seed: int) -> None:
    plan = _plan("reference_cache", LATE_LOOP, seed)  # anchors 0, 1, 2
    refs = [s for s in plan.slots if not s.supervised]
    targets = [s for s in plan.slots if s.supervised]
    assert 1 <= len(refs) <= CFG.reference_cache.max_refs and len(plan.slots) <= 7
    assert [s.chunk for s in refs] == list(range(3 - len(refs), 3))  # the last clean states before the loop
    assert all(s.source == "clean" and s.sigma == 0.0 and s.position == 3 * s.chunk for s in refs)
    assert [s.chunk for s in targets] == list(range(3, 7)) and all(s.source == "observed" for s in targets)
    gap = targets[0].position - (refs[-1].position + 3)
    assert gap % 3 == 0 and CFG.reference_cache.gap_min <= gap // 3 <= CFG.reference_cache.gap_max
    assert [s.position for s in targets] == [targets[0].position + 3 * i for i in range(4)]
    assert plan.slots[:len(refs)] == tuple(refs)  # references come first: every target reads them


def test_reference_cache_gaps_cover_the_configured_range() -> None:
    gaps = set()
    for seed in range(60):
        plan = _plan("reference_cache", OCCLUDER, seed)
        refs = [s for s in plan.slots if not s.supervised]
        gaps.add((plan.slots[len(refs)].position - refs[-1].position - 3) // 3)
    assert gaps == set(range(CFG.reference_cache.gap_min, CFG.reference_cache.gap_max + 1))


def test_sample_regime_follows_the_weights() -> None:
    rng = np.random.default_rng(0)
    weights = {"all_history": 3.0, "node_drop": 1.0, "noisy_memory": 0.0}
    draws = [sample_regime(weights, rng) for _ in range(4000)]
    assert set(draws) == {"all_history", "node_drop"}
    assert abs(draws.count("all_history") / len(draws) - 0.75) < 0.03


def test_sigma_shift_by_hand() -> None:
    u = np.random.default_rng(5).uniform()
    expected = 3.0 * u / (1 + 2.0 * u)
    assert sample_sigma(np.random.default_rng(5), CFG) == pytest.approx(expected)


def test_assemble_gathers_sources_and_noises_by_hand() -> None:
    plan = _plan("reference_cache", OCCLUDER, 3)
    clean = torch.arange(21.0).repeat_interleave(1)[None, :, None, None].expand(2, 21, 1, 2).clone()
    observed = clean + 100.0
    cams = {"clean": torch.zeros(21, 14), "observed": torch.ones(21, 14)}
    inputs = assemble(plan, {"clean": clean, "observed": observed}, cams, torch.Generator().manual_seed(0))
    expected_x0 = torch.cat([(clean if s.source == "clean" else observed)[:, 3 * s.chunk:3 * s.chunk + 3]
                             for s in plan.slots], dim=1)[None]
    assert torch.equal(inputs.x0, expected_x0)
    sig = inputs.sigmas[:, None, :, None, None]
    torch.testing.assert_close(inputs.xt, (1 - sig) * inputs.x0 + sig * inputs.noise)
    assert inputs.positions.tolist() == plan.frame_positions()
    assert inputs.cameras[0, :, 0].tolist() == [0.0 if s.source == "clean" else 1.0 for s in plan.slots
                                                for _ in range(3)]
    dropped = assemble(_plan("node_drop", OCCLUDER, 0), {"clean": clean}, cams, torch.Generator().manual_seed(0))
    assert torch.equal(dropped.xt[:, :, 6:12], dropped.noise[:, :, 6:12])  # degraded chunks 2, 3 are pure noise
