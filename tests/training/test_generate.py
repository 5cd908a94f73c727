"""The streaming sampler: PM-RoPE at zero init changes nothing, chunk-by-chunk equals the full chunk-causal pass at
every denoising step, and reference chunks keep their original positions in the cache."""
from __future__ import annotations

from pathlib import Path

import torch

from schemas.constants import CHUNK_SIZE
from tests.training.graphs import OCCLUDER
from training.config import load_train_config
from training.generate.rollouts import build_plan
from training.generate.sampler import StepTrace, sample_rollout
from training.model.wan_causal import CausalContext, build_model, remind_forward

TINY = Path(__file__).resolve().parents[2] / "configs" / "train-tiny.yaml"


def _inputs(seed: int = 0) -> tuple[dict, dict, torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    latents = {"clean": torch.randn(16, 21, 8, 14, generator=gen), "observed": torch.randn(16, 21, 8, 14, generator=gen)}
    cameras = {"clean": torch.randn(21, 14, generator=gen), "observed": torch.randn(21, 14, generator=gen)}
    return latents, cameras, torch.randn(1, 512, 32, generator=gen), torch.zeros(1, 512, 32)


def test_zero_init_pm_rope_generates_the_same_video() -> None:
    cfg = load_train_config(TINY, {"generate": {"steps": 2}})
    with_pm = build_model(cfg.model, torch.device("cpu"), seed=0).eval()
    without = build_model(cfg.model.model_copy(update={"pm_rope": cfg.model.pm_rope.model_copy(
        update={"enabled": False})}), torch.device("cpu"), seed=0).eval()
    assert any(".pm_" in n for n, _ in with_pm.named_parameters())
    assert not any(".pm_" in n for n, _ in without.named_parameters())
    latents, cameras, text, null = _inputs()
    for mode in ("i2v", "v2v"):
        plan = build_plan(mode, OCCLUDER, latents, cameras, cfg.generate)
        a = sample_rollout(with_pm, plan.rollout, text, null, cfg.generate, seed=7).latents
        b = sample_rollout(without, plan.rollout, text, null, cfg.generate, seed=7).latents
        assert all(torch.equal(x, y) for x, y in zip(a, b))


def test_chunk_by_chunk_equals_full_chunk_causal_pass_at_every_step() -> None:
    cfg = load_train_config(TINY, {"generate": {"steps": 3, "reference_gap": 2}})
    model = build_model(cfg.model, torch.device("cpu"), seed=0).eval()
    with torch.no_grad():  # non-zero PM-RoPE so the camera path is exercised too
        for name, param in model.named_parameters():
            if ".pm_" in name:
                param.normal_(0, 0.05, generator=torch.Generator().manual_seed(len(name)))
    latents, cameras, text, null = _inputs(1)
    for mode in ("i2v", "reference"):
        plan = build_plan(mode, OCCLUDER, latents, cameras, cfg.generate)
        traces: list[StepTrace] = []
        result = sample_rollout(model, plan.rollout, text, null, cfg.generate, seed=3, trace=traces.append)
        assert len(traces) == cfg.generate.steps * sum(c.given is None for c in plan.rollout.chunks)
        context = torch.cat([text, null])
        for step in traces:
            chunks = plan.rollout.chunks[: step.chunk + 1]
            history = [x[None] for x in result.latents[: step.chunk]]
            full = torch.cat([*history, step.latents], dim=2).expand(2, -1, -1, -1, -1)
            timesteps = torch.cat([torch.zeros(CHUNK_SIZE * step.chunk), step.timesteps])[None].expand(2, -1)
            positions = torch.tensor([p for c in chunks for p in c.positions])
            slots = torch.arange(len(chunks)).repeat_interleave(CHUNK_SIZE)
            cams = torch.cat([c.cameras for c in chunks])[None].expand(2, -1, -1)
            with torch.no_grad():
                velocity = remind_forward(model, full, timesteps, context, CausalContext(positions, slots, cams))
            torch.testing.assert_close(velocity[:, :, -CHUNK_SIZE:], step.velocity, atol=2e-5, rtol=1e-4)


def test_reference_cache_keeps_original_positions() -> None:
    cfg = load_train_config(TINY, {"generate": {"steps": 1, "reference_gap": 3, "reference_count": 2}})
    model = build_model(cfg.model, torch.device("cpu"), seed=0).eval()
    latents, cameras, text, null = _inputs(2)
    plan = build_plan("reference", OCCLUDER, latents, cameras, cfg.generate)
    result = sample_rollout(model, plan.rollout, text, null, cfg.generate, seed=0)
    # OCCLUDER: anchors 0, 1 kept at positions 0..5; the target (chunks 2..6) starts G = 3 chunks later.
    assert plan.source_chunks == [0, 1, 2, 3, 4, 5, 6]
    assert result.cache.positions == {0: [0, 1, 2], 1: [3, 4, 5], **{
        slot: list(range(3 * slot + 9, 3 * slot + 12)) for slot in range(2, 7)}}
    assert torch.equal(result.latents[0], latents["clean"][:, 0:3])  # references are the clean clip as given
    assert [c.role for c in plan.rollout.chunks] == ["R", "R", "G", "G", "G", "G", "G"]
