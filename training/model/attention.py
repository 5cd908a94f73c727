"""The per-layer self-attention processor: stock Wan attention plus chunk-causal masking, PM-RoPE and the KV cache.

The stock Q/K/V/O projections, norms and RoPE rotation run unchanged; the extensions are the phase rotation of q
and k, the zero-initialised value and output residuals, the mask and the cache. ``RotaryContext`` is what the
replacement rope module returns: the stock (cos, sin) plus everything this call needs, carried through the blocks.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from diffusers.models.attention_dispatch import dispatch_attention_fn

from training.model.kv_cache import KVCache
from training.model.pm_rope import rotate_pairs


@dataclass
class AttentionRecorder:
    """Attention mass from each query slot to each key slot, for the chosen layers (KV-importance heatmaps)."""

    layers: set[int]
    num_slots: int
    query_stride: int = 1
    mass: dict[int, torch.Tensor] = field(default_factory=dict)  # layer -> (query slots, key slots), summed rows


@dataclass
class RotaryContext:
    """Per-call context passed from the rope module through every block to the self-attention processors."""

    freqs_cos: torch.Tensor  # (1, L, 1, D), the stock layout
    freqs_sin: torch.Tensor
    token_frame: torch.Tensor  # (L,) latent frame of every query token
    token_slots: torch.Tensor  # (L,) attention slot of every query token
    key_slots: torch.Tensor  # (S,) slot of every key token: cached ones first, then this call's
    frame_cameras: torch.Tensor | None  # (B, F, 14) PM-RoPE descriptors
    mask: Any = None  # None (full), dense bool (1, 1, L, S), or a flex-attention BlockMask
    cache: KVCache | None = None
    write_cache: bool = False
    recorder: AttentionRecorder | None = None


def apply_stock_rotary(x: torch.Tensor, freqs_cos: torch.Tensor, freqs_sin: torch.Tensor) -> torch.Tensor:
    """Wan's RoPE rotation, exactly as diffusers' WanAttnProcessor applies it."""
    x1, x2 = x.unflatten(-1, (-1, 2)).unbind(-1)
    cos, sin = freqs_cos[..., 0::2], freqs_sin[..., 1::2]
    out = torch.empty_like(x)
    out[..., 0::2] = x1 * cos - x2 * sin
    out[..., 1::2] = x1 * sin + x2 * cos
    return out.type_as(x)


_COMPILED_FLEX: Any = None


def _flex_attention(query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, block_mask: Any) -> torch.Tensor:
    """flex-attention in the (B, L, heads, D) layout; compiled on CUDA, the eager reference elsewhere."""
    global _COMPILED_FLEX
    from torch.nn.attention.flex_attention import flex_attention

    attend = flex_attention
    if query.is_cuda:
        if _COMPILED_FLEX is None:
            _COMPILED_FLEX = torch.compile(flex_attention, dynamic=False)
        attend = _COMPILED_FLEX
    out = attend(query.transpose(1, 2), key.transpose(1, 2), value.transpose(1, 2), block_mask=block_mask)
    return out.transpose(1, 2)


class ReMindAttnProcessor:
    """Self-attention of block ``layer``; the new modules live on the attention module as ``pm_*``."""

    def __init__(self, layer: int) -> None:
        self.layer = layer

    def __call__(
        self,
        attn: Any,
        hidden_states: torch.Tensor,
        encoder_hidden_states: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        rotary_emb: RotaryContext | None = None,
    ) -> torch.Tensor:
        if not isinstance(rotary_emb, RotaryContext):
            raise TypeError("ReMindAttnProcessor needs the RotaryContext of training.model.wan_causal")
        ctx = rotary_emb
        query = attn.norm_q(attn.to_q(hidden_states)).unflatten(2, (attn.heads, -1))
        key = attn.norm_k(attn.to_k(hidden_states)).unflatten(2, (attn.heads, -1))
        value = attn.to_v(hidden_states).unflatten(2, (attn.heads, -1))
        query = apply_stock_rotary(query, ctx.freqs_cos, ctx.freqs_sin)
        key = apply_stock_rotary(key, ctx.freqs_cos, ctx.freqs_sin)

        cameras = None if ctx.frame_cameras is None else ctx.frame_cameras[:, ctx.token_frame]  # (B, L, 14)
        if cameras is not None and hasattr(attn, "pm_phase"):
            phase = attn.pm_phase(ctx.frame_cameras)[:, ctx.token_frame]  # (B, L, heads, D/2)
            query, key = rotate_pairs(query, phase), rotate_pairs(key, phase)
        if cameras is not None and hasattr(attn, "pm_value"):
            value = value + attn.pm_value(value.flatten(2), cameras).unflatten(2, (attn.heads, -1))

        keys, values = key, value
        if ctx.cache is not None:
            cached_k, cached_v = ctx.cache.read(self.layer)
            if cached_k is not None:
                keys, values = torch.cat([cached_k, key], dim=1), torch.cat([cached_v, value], dim=1)
            if ctx.write_cache:
                ctx.cache.write(self.layer, key, value)

        if ctx.recorder is not None and self.layer in ctx.recorder.layers:
            self._record(ctx, query, keys)
        if ctx.mask is not None and not isinstance(ctx.mask, torch.Tensor):
            out = _flex_attention(query, keys, values, ctx.mask)
        else:
            out = dispatch_attention_fn(query, keys, values, attn_mask=ctx.mask, dropout_p=0.0, is_causal=False)
        out = out.flatten(2, 3).type_as(query)

        projected = attn.to_out[0](out)
        if cameras is not None and hasattr(attn, "pm_out"):
            projected = projected + attn.pm_out(out, cameras)
        return attn.to_out[1](projected)

    @torch.no_grad()
    def _record(self, ctx: RotaryContext, query: torch.Tensor, keys: torch.Tensor) -> None:
        """Mean attention mass from each query slot's tokens to each key slot, averaged over heads (batch 0)."""
        recorder = ctx.recorder
        assert recorder is not None
        q_slots = ctx.token_slots[:: recorder.query_stride]
        q = query[0, :: recorder.query_stride].transpose(0, 1).float()  # (heads, Lq, D)
        k = keys[0].transpose(0, 1).float()  # (heads, S, D)
        n = recorder.num_slots
        visible = ctx.key_slots[None, :] <= q_slots[:, None] if ctx.mask is not None else None
        mass = torch.zeros(n, n, device=q.device)
        for head in range(q.shape[0]):  # one head at a time bounds memory to Lq x S
            scores = (q[head] @ k[head].T) / math.sqrt(q.shape[-1])
            if visible is not None:
                scores = scores.masked_fill(~visible, float("-inf"))
            probs = F.softmax(scores, dim=-1)
            per_key_slot = torch.zeros(probs.shape[0], n, device=q.device).index_add_(1, ctx.key_slots, probs)
            mass.index_add_(0, q_slots, per_key_slot)
        counts = torch.bincount(q_slots, minlength=n).clamp(min=1).float()[:, None]
        rows = (mass / counts / query.shape[2]).cpu()
        recorder.mass[self.layer] = recorder.mass.get(self.layer, torch.zeros(n, n)) + rows
