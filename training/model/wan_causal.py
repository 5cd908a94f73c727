"""A stock diffusers WanTransformer3DModel, extended in place into ReMind's causal video DiT.

``attach_remind`` makes the model a ``CausalWanTransformer`` (the stock class plus a forward that takes the causal
context as an argument), swaps in a rope module that turns that context into a ``RotaryContext`` carried through
the stock blocks, sets a ``ReMindAttnProcessor`` on every self-attention, and adds the zero-initialised PM-RoPE
modules as ``blocks.N.attn1.pm_phase / pm_value / pm_out``: the only new state-dict keys. The forward calls the
stock submodules in the stock order (tested equal to the stock forward); per-chunk timesteps use the stock
per-token timestep path (timestep of shape (B, tokens)).
"""
from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import torch
from diffusers import WanTransformer3DModel
from torch import nn

from training.checkpoint import checkpoint_pm_rope, load_checkpoint
from training.config import ModelConfig, PMRoPEConfig
from training.model.attention import AttentionRecorder, ReMindAttnProcessor, RotaryContext
from training.model.kv_cache import KVCache
from training.model.pm_rope import CameraResidual, PhaseMLP

NEW_PARAMETER_MARK = ".pm_"
MASK_CACHE_SIZE = 64


@dataclass
class CausalContext:
    """What one forward call needs besides latents, timesteps and text.

    ``positions``: temporal RoPE position of each latent frame (may be non-contiguous: cached chunks keep their
    original positions). ``slots``: attention slot (chunk order) of each latent frame; with ``causal`` a token
    sees the tokens of its own and of earlier slots. ``cameras``: (B, F, 14) PM-RoPE descriptors.
    """

    positions: torch.Tensor
    slots: torch.Tensor
    cameras: torch.Tensor | None = None
    causal: bool = True
    cache: KVCache | None = None
    write_cache: bool = False
    recorder: AttentionRecorder | None = None

    @classmethod
    def chunked(cls, num_frames: int, chunk_size: int = 3, first_position: int = 0,
                **kwargs: object) -> "CausalContext":
        """Contiguous positions from ``first_position``, slots = frame // chunk_size."""
        frames = torch.arange(num_frames)
        return cls(positions=frames + first_position, slots=frames // chunk_size, **kwargs)  # type: ignore[arg-type]


class ContextRope(nn.Module):
    """Replacement for WanRotaryPosEmbed: stock frequency tables, frame positions and context from the call."""

    def __init__(self, base: nn.Module, backend: str = "dense") -> None:
        super().__init__()
        self.base = base  # WanRotaryPosEmbed: its tables are non-persistent buffers, so no new state-dict keys
        self.backend = backend
        self.masks: OrderedDict[tuple, object] = OrderedDict()  # sequence layout -> mask, built once per layout

    def forward(self, hidden_states: torch.Tensor, ctx: CausalContext | None = None) -> RotaryContext:
        _, _, num_frames, height, width = hidden_states.shape
        p_t, p_h, p_w = self.base.patch_size
        if p_t != 1:
            raise ValueError("chunk-causal attention needs a temporal patch size of 1")
        pph, ppw = height // p_h, width // p_w
        device = hidden_states.device
        if ctx is None:  # the stock call: every frame at its own position, full attention
            ctx = CausalContext(torch.arange(num_frames), torch.zeros(num_frames, dtype=torch.long), causal=False)
        # layout checks and the mask key on the host copies: no device->host sync in a training step
        positions_host, slots_host = ctx.positions.cpu(), ctx.slots.cpu()
        if positions_host.shape != (num_frames,) or slots_host.shape != (num_frames,):
            raise ValueError(f"positions/slots must have shape ({num_frames},)")
        if int(positions_host.max()) >= self.base.max_seq_len or int(positions_host.min()) < 0:
            raise ValueError(f"temporal positions must lie in 0..{self.base.max_seq_len - 1}")
        positions = positions_host.to(device, non_blocking=True)

        tables = []
        for table in (self.base.freqs_cos, self.base.freqs_sin):
            t, h, w = table.split([self.base.t_dim, self.base.h_dim, self.base.w_dim], dim=1)
            grid = (num_frames, pph, ppw, -1)
            parts = [t[positions].view(num_frames, 1, 1, -1).expand(grid),
                     h[:pph].view(1, pph, 1, -1).expand(grid), w[:ppw].view(1, 1, ppw, -1).expand(grid)]
            tables.append(torch.cat(parts, dim=-1).reshape(1, num_frames * pph * ppw, 1, -1))

        token_slots_host = slots_host.repeat_interleave(pph * ppw)
        cached = ctx.cache.slots if ctx.cache is not None and ctx.cache.slots is not None else token_slots_host[:0]
        key_slots_host = torch.cat([cached.cpu(), token_slots_host])
        token_frame = torch.arange(num_frames).repeat_interleave(pph * ppw).to(device, non_blocking=True)
        token_slots = token_slots_host.to(device, non_blocking=True)
        key_slots = key_slots_host.to(device, non_blocking=True)
        cameras = None if ctx.cameras is None else ctx.cameras.to(device=device, dtype=torch.float32)
        mask = self._mask(ctx.causal, token_slots_host, key_slots_host, token_slots, key_slots)
        return RotaryContext(
            freqs_cos=tables[0], freqs_sin=tables[1], token_frame=token_frame, token_slots=token_slots,
            key_slots=key_slots, frame_cameras=cameras, mask=mask, cache=ctx.cache, write_cache=ctx.write_cache,
            recorder=ctx.recorder)

    def _mask(self, causal: bool, token_slots_host: torch.Tensor, key_slots_host: torch.Tensor,
              token_slots: torch.Tensor, key_slots: torch.Tensor) -> object:
        """None when every query sees every key; else a dense boolean mask or a flex-attention BlockMask.

        Masks are cached by sequence layout (the slots of queries and keys, read from the host copies): a training
        step or a denoising step with a layout seen before reuses its mask instead of building it again.
        """
        if not causal or int(key_slots_host.max()) <= int(token_slots_host.min()):
            return None
        key = (self.backend, str(token_slots.device), _runs(token_slots_host), _runs(key_slots_host))
        if key in self.masks:
            self.masks.move_to_end(key)
            return self.masks[key]
        if self.backend == "flex":
            from torch.nn.attention.flex_attention import create_block_mask

            q_slots, kv_slots = token_slots.clone(), key_slots.clone()

            def chunk_causal(b: torch.Tensor, h: torch.Tensor, q: torch.Tensor, kv: torch.Tensor) -> torch.Tensor:
                return kv_slots[kv] <= q_slots[q]

            mask: object = create_block_mask(chunk_causal, None, None, len(token_slots), len(key_slots),
                                             device=str(token_slots.device))
        else:
            mask = (key_slots[None, :] <= token_slots[:, None])[None, None]
        self.masks[key] = mask
        if len(self.masks) > MASK_CACHE_SIZE:
            self.masks.popitem(last=False)
        return mask


def _runs(slots: torch.Tensor) -> tuple[tuple[int, int], ...]:
    """Run-length encoding (value, count) of a slot vector: a small hashable key of the layout."""
    values, counts = torch.unique_consecutive(slots, return_counts=True)
    return tuple(zip(values.tolist(), counts.tolist()))


class CausalWanTransformer(WanTransformer3DModel):
    """The stock model with a forward that takes the ``CausalContext`` as an argument.

    ``checkpoint_blocks``: the first N blocks recompute their activations in the backward pass (gradient
    checkpointing where memory demands it; the stock switch ``enable_gradient_checkpointing`` means all of them).
    """

    checkpoint_blocks: int = 0

    def to_json_string(self) -> str:  # checkpoints stay stock diffusers folders: the stock class name
        return super().to_json_string().replace(f'"{type(self).__name__}"', f'"{WanTransformer3DModel.__name__}"', 1)

    def forward(self, hidden_states: torch.Tensor, timestep: torch.Tensor, encoder_hidden_states: torch.Tensor,
                ctx: CausalContext | None = None, encoder_hidden_states_image: torch.Tensor | None = None,
                return_dict: bool = True, attention_kwargs: dict | None = None) -> tuple[torch.Tensor]:
        batch, _, frames, height, width = hidden_states.shape
        p_t, p_h, p_w = self.config.patch_size
        rotary = self.rope(hidden_states, ctx)
        x = self.patch_embedding(hidden_states).flatten(2).transpose(1, 2).contiguous()
        per_token = timestep.shape[1] if timestep.ndim == 2 else None
        temb, projection, text, image = self.condition_embedder(
            timestep.flatten() if per_token else timestep, encoder_hidden_states, encoder_hidden_states_image,
            timestep_seq_len=per_token)
        projection = projection.unflatten(2 if per_token else 1, (6, -1))
        if image is not None:
            text = torch.concat([image, text], dim=1)
        recomputed = 0
        if torch.is_grad_enabled():
            recomputed = len(self.blocks) if self.gradient_checkpointing else self.checkpoint_blocks
        for index, block in enumerate(self.blocks):
            if index < recomputed:
                x = torch.utils.checkpoint.checkpoint(block, x, text, projection, rotary, use_reentrant=False)
            else:
                x = block(x, text, projection, rotary)
        if temb.ndim == 3:
            shift, scale = (self.scale_shift_table.unsqueeze(0) + temb.unsqueeze(2)).chunk(2, dim=2)
            shift, scale = shift.squeeze(2), scale.squeeze(2)
        else:
            shift, scale = (self.scale_shift_table + temb.unsqueeze(1)).chunk(2, dim=1)
        x = self.proj_out((self.norm_out(x.float()) * (1 + scale) + shift).type_as(x))
        x = x.reshape(batch, frames // p_t, height // p_h, width // p_w, p_t, p_h, p_w, -1)
        return (x.permute(0, 7, 1, 4, 2, 5, 3, 6).flatten(6, 7).flatten(4, 5).flatten(2, 3),)


def resolve_backend(backend: str, device: torch.device) -> str:
    return ("flex" if device.type == "cuda" else "dense") if backend == "auto" else backend


def attach_remind(model: WanTransformer3DModel, pm: PMRoPEConfig, backend: str = "dense") -> CausalWanTransformer:
    """Extend ``model`` in place (idempotent): context rope, per-layer processors, zero-initialised PM-RoPE."""
    if type(model) is WanTransformer3DModel:  # the class swap torch's fully_shard also does: same module, new forward
        model.__class__ = CausalWanTransformer
    if not isinstance(model, CausalWanTransformer):
        raise TypeError(f"attach_remind extends a WanTransformer3DModel, not a {type(model).__name__}")
    if not isinstance(model.rope, ContextRope):
        model.rope = ContextRope(model.rope, backend)
    model.rope.backend = backend
    reference = next(model.parameters())
    for index, block in enumerate(model.blocks):
        attn = block.attn1
        attn.set_processor(ReMindAttnProcessor(index))
        if not pm.enabled or hasattr(attn, "pm_phase"):
            continue
        head_dim = attn.inner_dim // attn.heads
        attn.pm_phase = PhaseMLP(attn.heads, head_dim, pm.phase_hidden).to(reference.device)
        if pm.value_residual:
            attn.pm_value = CameraResidual(attn.inner_dim, attn.inner_dim).to(reference.device)
        if pm.output_residual:
            attn.pm_out = CameraResidual(attn.inner_dim, attn.to_out[0].out_features).to(reference.device)
    return model


def new_parameter_names(model: nn.Module) -> list[str]:
    return [name for name, _ in model.named_parameters() if NEW_PARAMETER_MARK in name]


def remind_forward(
    model: nn.Module,
    latents: torch.Tensor,
    timesteps: torch.Tensor,
    text: torch.Tensor,
    ctx: CausalContext,
) -> torch.Tensor:
    """Velocity prediction (B, C, F, H, W) for latents (B, C, F, H, W) with per-frame timesteps (B, F) in 0..1000.

    ``model`` is a ``CausalWanTransformer``, possibly wrapped (DDP): the call goes through the wrapper.
    """
    inner = getattr(model, "module", model)
    p_t, p_h, p_w = inner.config.patch_size
    tokens_per_frame = (latents.shape[3] // p_h) * (latents.shape[4] // p_w)
    token_timesteps = timesteps.repeat_interleave(tokens_per_frame, dim=1)
    return model(latents, token_timesteps, text, ctx, return_dict=False)[0]


def load_transformer(cfg: ModelConfig, seed: int = 0) -> WanTransformer3DModel:
    """Pretrained Wan (``from_pretrained``) in production; a tiny random-init Wan (fixed seed) otherwise."""
    if cfg.pretrained:
        return WanTransformer3DModel.from_pretrained(cfg.pretrained, subfolder=cfg.pretrained_subfolder)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return WanTransformer3DModel(patch_size=(1, 2, 2), **cfg.tiny.model_dump())


def build_model(cfg: ModelConfig, device: torch.device, seed: int = 0) -> CausalWanTransformer:
    """Load, move to ``device``, extend; then the configured gradient checkpointing and per-block compilation."""
    model = load_transformer(cfg, seed).to(device)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed + 1)
        model = attach_remind(model, cfg.pm_rope, resolve_backend(cfg.attention_backend, device))
    checkpointing = cfg.gradient_checkpointing
    model.checkpoint_blocks = len(model.blocks) if checkpointing is True else min(int(checkpointing), len(model.blocks))
    if cfg.compile_blocks:
        for block in model.blocks:
            block.compile(backend=cfg.compile_backend)  # in place: the state-dict keys stay the stock ones
    return model


def load_remind_transformer(directory: Path, device: torch.device | str = "cpu", backend: str = "auto",
                            dtype: torch.dtype = torch.float32) -> WanTransformer3DModel:
    """A training checkpoint as a model: stock Wan through ``from_pretrained``, extended with the PM-RoPE config
    the checkpoint records, then every key (stock and ``pm_*``) loaded strictly by ``load_checkpoint``."""
    from diffusers.utils import logging as diffusers_logging

    directory = Path(directory)
    pm = checkpoint_pm_rope(directory)
    verbosity = diffusers_logging.get_verbosity()
    diffusers_logging.set_verbosity_error()  # the pm_* keys it skips are loaded just below
    try:
        model = WanTransformer3DModel.from_pretrained(str(directory), torch_dtype=dtype)
    finally:
        diffusers_logging.set_verbosity(verbosity)
    device = torch.device(device)
    model = attach_remind(model.to(device), pm, resolve_backend(backend, device))
    load_checkpoint(directory, model)
    return model.eval()
