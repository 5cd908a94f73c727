"""Identities of the extended Wan: zero-init == stock, chunk causality, KV cache == full pass, gradients."""
from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from training.config import ModelConfig
from training.model.attention import apply_stock_rotary
from training.model.kv_cache import KVCache
from training.cameras import DESCRIPTOR_DIM, camera_descriptors
from training.model.pm_rope import rotate_pairs
from training.model.wan_causal import (
    CausalContext, attach_remind, load_transformer, new_parameter_names, remind_forward)

TOKENS = 4 * 7  # latents of 8x14 after 2x2 patching


def _stock() -> torch.nn.Module:
    return load_transformer(ModelConfig(), seed=0)


def _extended(random_new: bool = True) -> torch.nn.Module:
    model = attach_remind(_stock(), ModelConfig().pm_rope)
    if random_new:
        gen = torch.Generator().manual_seed(7)
        with torch.no_grad():
            for name, p in model.named_parameters():
                if ".pm_" in name:
                    p.copy_(torch.randn(p.shape, generator=gen) * 0.2)
    return model


def _inputs(frames: int = 9, seed: int = 1) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    latents = torch.randn(1, 16, frames, 8, 14, generator=gen)
    timesteps = torch.tensor([[100.0] * 3 + [500.0] * 3 + [900.0] * 3][: frames // 3 * 3])[:, :frames]
    text = torch.randn(1, 8, 32, generator=gen)
    cameras = torch.randn(1, frames, DESCRIPTOR_DIM, generator=gen)
    return latents, timesteps, text, cameras


def test_zero_init_equals_stock_exactly() -> None:
    stock = _stock()
    extended = attach_remind(copy.deepcopy(stock), ModelConfig().pm_rope)
    latents, timesteps, text, cameras = _inputs()
    with torch.no_grad():
        reference = stock(latents, timestep=timesteps.repeat_interleave(TOKENS, 1), encoder_hidden_states=text,
                          return_dict=False)[0]
        out = remind_forward(extended, latents, timesteps, text, CausalContext.chunked(9, causal=False,
                                                                                      cameras=cameras))
    assert torch.equal(out, reference)


def test_new_parameters_are_the_only_new_keys() -> None:
    stock_keys = set(_stock().state_dict())
    extended_keys = set(_extended().state_dict())
    assert stock_keys <= extended_keys
    assert all(".attn1.pm_" in key for key in extended_keys - stock_keys)
    assert len(extended_keys - stock_keys) == len(new_parameter_names(_extended())) > 0


def test_chunk_output_does_not_depend_on_later_chunks() -> None:
    model = _extended()
    latents, timesteps, text, cameras = _inputs()
    changed, cams2, steps2 = latents.clone(), cameras.clone(), timesteps.clone()
    changed[:, :, 6:] += 3.0
    cams2[:, 6:] += 1.0
    steps2[:, 6:] = 10.0
    with torch.no_grad():
        a = remind_forward(model, latents, timesteps, text, CausalContext.chunked(9, cameras=cameras))
        b = remind_forward(model, changed, steps2, text, CausalContext.chunked(9, cameras=cams2))
    torch.testing.assert_close(a[:, :, :6], b[:, :, :6], rtol=0, atol=1e-6)
    assert (a[:, :, 6:] - b[:, :, 6:]).abs().max() > 1e-3


def test_kv_cache_chunk_by_chunk_equals_full_causal_pass() -> None:
    model = _extended()
    latents, timesteps, text, cameras = _inputs()
    positions = torch.tensor([0, 1, 2, 15, 16, 17, 18, 19, 20])  # a reference chunk, then the target after a gap
    slots = torch.arange(9) // 3
    with torch.no_grad():
        full = remind_forward(model, latents, timesteps, text, CausalContext(positions, slots, cameras))
        cache = KVCache(len(model.blocks))
        outs = []
        for chunk in range(3):
            part = slice(3 * chunk, 3 * chunk + 3)
            ctx = CausalContext(positions[part], slots[part], cameras[:, part], cache=cache, write_cache=True)
            outs.append(remind_forward(model, latents[:, :, part], timesteps[:, part], text, ctx))
            cache.commit(slots[part].repeat_interleave(TOKENS), slots[part].tolist(), positions[part].tolist())
    torch.testing.assert_close(torch.cat(outs, dim=2), full, rtol=1e-5, atol=1e-5)
    assert cache.positions == {0: [0, 1, 2], 1: [15, 16, 17], 2: [18, 19, 20]}
    assert len(cache) == 9 * TOKENS


def test_cached_keys_keep_their_positions_when_evicting() -> None:
    model = _extended()
    latents, timesteps, text, cameras = _inputs()
    positions, slots = torch.tensor([0, 1, 2, 3, 4, 5, 30, 31, 32]), torch.arange(9) // 3
    with torch.no_grad():
        cache = KVCache(len(model.blocks))
        for chunk in range(2):
            part = slice(3 * chunk, 3 * chunk + 3)
            remind_forward(model, latents[:, :, part], timesteps[:, part], text,
                           CausalContext(positions[part], slots[part], cameras[:, part], cache=cache,
                                         write_cache=True))
            cache.commit(slots[part].repeat_interleave(TOKENS), slots[part].tolist(), positions[part].tolist())
        kept_key = cache.keys[0][:, :3 * TOKENS].clone()
        cache.evict({1})
        assert torch.equal(cache.keys[0], kept_key) and cache.positions == {0: [0, 1, 2]}
        # Reading chunk 0 from the cache equals a full pass over chunks (0, 2) at positions (0..2, 30..32).
        last = slice(6, 9)
        cached = remind_forward(model, latents[:, :, last], timesteps[:, last], text,
                                CausalContext(positions[last], slots[last], cameras[:, last], cache=cache))
        keep = torch.tensor([0, 1, 2, 6, 7, 8])
        full = remind_forward(model, latents[:, :, keep], timesteps[:, keep], text,
                              CausalContext(positions[keep], slots[keep], cameras[:, keep]))
    torch.testing.assert_close(cached, full[:, :, 3:], rtol=1e-5, atol=1e-5)


def test_new_parameters_get_gradients() -> None:
    model = _extended(random_new=False)
    latents, timesteps, text, cameras = _inputs()
    new = dict((n, p) for n, p in model.named_parameters() if ".pm_" in n)

    def backward() -> None:
        model.zero_grad()
        out = remind_forward(model, latents, timesteps, text, CausalContext.chunked(9, cameras=cameras))
        (out ** 2).mean().backward()

    backward()
    zero_init_outputs = [n for n in new if ".pm_value." in n or ".pm_out." in n or ".net.2." in n]
    assert all(new[n].grad is not None and new[n].grad.abs().sum() > 0 for n in zero_init_outputs)
    with torch.no_grad():  # once the zero layers move, gradient reaches the phase MLP's first layer too
        for p in new.values():
            p -= 0.1 * p.grad
    backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in new.values())


def test_gradient_checkpointing_gives_identical_gradients() -> None:
    plain, checkpointed = _extended(), _extended()
    checkpointed.enable_gradient_checkpointing()
    latents, timesteps, text, cameras = _inputs()
    for model in (plain, checkpointed):
        model.train()
        out = remind_forward(model, latents, timesteps, text, CausalContext.chunked(9, cameras=cameras))
        (out ** 2).mean().backward()
    for (name, a), (_, b) in zip(plain.named_parameters(), checkpointed.named_parameters()):
        assert a.grad is not None, name
        torch.testing.assert_close(a.grad, b.grad, rtol=0, atol=0, msg=name)


def test_phase_offset_is_added_to_the_rope_angle() -> None:
    gen = torch.Generator().manual_seed(3)
    x = torch.randn(1, 5, 2, 8, generator=gen, dtype=torch.float64)
    theta = torch.rand(1, 5, 1, 4, generator=gen, dtype=torch.float64) * 6
    delta = torch.rand(1, 5, 2, 4, generator=gen, dtype=torch.float64) * 2
    as_stock = lambda angle: (angle.repeat_interleave(2, -1).cos(), angle.repeat_interleave(2, -1).sin())  # noqa: E731
    combined = rotate_pairs(apply_stock_rotary(x, *as_stock(theta)), delta)
    torch.testing.assert_close(combined, apply_stock_rotary(x, *as_stock(theta + delta)))
    assert torch.equal(rotate_pairs(x, torch.zeros_like(delta)), x)


def test_flex_attention_block_mask_matches_dense_mask() -> None:
    dense = _extended()
    flex = attach_remind(copy.deepcopy(dense), ModelConfig().pm_rope, backend="flex")
    latents, timesteps, text, cameras = _inputs()
    ctx = CausalContext.chunked(9, cameras=cameras)
    with torch.no_grad():
        a = remind_forward(attach_remind(dense, ModelConfig().pm_rope, "dense"), latents, timesteps, text, ctx)
        b = remind_forward(flex, latents, timesteps, text, ctx)
    torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)


def test_camera_descriptor_layout() -> None:
    c2w = np.tile(np.eye(4), (81, 1, 1))
    rot = np.array([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    c2w[80, :3, :3] = rot
    c2w[:, 0, 3] = np.linspace(0.0, 8.0, 81)  # centre 4, radius 4 -> normalised x in [-1, 1]
    K = np.tile(np.array([[416.0, 0, 415.5], [0, 240.0, 239.5], [0, 0, 1]]), (81, 1, 1))
    desc = camera_descriptors(c2w, K, 480, 832)
    assert desc.shape == (21, 14) and desc.dtype == np.float32
    np.testing.assert_allclose(desc[20, :9], rot.reshape(-1))  # latent 20 <- frame 80, row-major vec(R)
    np.testing.assert_allclose(desc[0, 9:12], [-1.0, 0, 0], atol=1e-6)
    np.testing.assert_allclose(desc[20, 9:12], [1.0, 0, 0], atol=1e-6)
    np.testing.assert_allclose(desc[:, 12:], np.log([[0.5, 0.5]] * 21), atol=1e-6)
    unknown = camera_descriptors(None, None, 480, 832)
    np.testing.assert_allclose(unknown[:, :12], np.tile(np.r_[np.eye(3).ravel(), np.zeros(3)], (21, 1)))
    assert np.isfinite(unknown).all()


@pytest.mark.parametrize("bad", [torch.tensor([0, 1, 2000]), torch.tensor([-1, 0, 1])])
def test_positions_outside_the_rope_table_are_refused(bad: torch.Tensor) -> None:
    latents, timesteps, text, _ = _inputs(frames=3)
    with pytest.raises(ValueError, match="temporal positions"):
        remind_forward(_extended(), latents, timesteps[:, :3], text, CausalContext(bad, torch.zeros(3, dtype=int)))


def test_wan_1_3b_block_shapes_under_bf16_autocast() -> None:
    """One block with Wan2.1-T2V-1.3B's widths (12 heads of 128: RoPE bands 44/42/42) under bf16 autocast."""
    cfg = ModelConfig(tiny={"num_attention_heads": 12, "attention_head_dim": 128, "text_dim": 4096,
                            "freq_dim": 256, "ffn_dim": 8960, "num_layers": 1})
    model = attach_remind(load_transformer(cfg), cfg.pm_rope)
    assert (model.rope.base.t_dim, model.rope.base.h_dim, model.rope.base.w_dim) == (44, 42, 42)
    gen = torch.Generator().manual_seed(0)
    latents = torch.randn(1, 16, 6, 4, 4, generator=gen)
    ctx = CausalContext(torch.tensor([0, 1, 2, 12, 13, 14]), torch.arange(6) // 3, torch.randn(1, 6, 14, generator=gen))
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        out = remind_forward(model, latents, torch.full((1, 6), 500.0), torch.randn(1, 4, 4096, generator=gen), ctx)
    assert out.shape == latents.shape and torch.isfinite(out.float()).all()
