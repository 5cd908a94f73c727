"""The streaming sampler (ReMind Sec. 3.3): chunk by chunk through the KV cache, keeping original positions.

A ``Rollout`` is an ordered list of chunks (the attention slots). A *given* chunk (a reference or a V2V prefix) is
written to the cache as it is; a *generated* chunk starts from Gaussian noise and is denoised with Wan's
flow-matching scheduler (UniPC or Euler, with its shift), reading the cache of the chunks before it; frames fixed
inside a generated chunk (the I2V first frame) are put back before every step and get timestep 0. With guidance > 1
the conditional and the null-text branch run as a batch of two (each branch keeps its own cache rows), and
v = v_null + g (v_text - v_null). After a chunk is final it is written to the cache with timestep 0 at its own
temporal positions, so later chunks see it where it was, however far away.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from training.config import GenerateConfig
from training.model.attention import AttentionRecorder
from training.model.kv_cache import KVCache
from training.model.wan_causal import CausalContext, remind_forward


@dataclass
class Chunk:
    positions: list[int]  # temporal RoPE positions of the chunk's latent frames
    cameras: torch.Tensor  # (F, 14) PM-RoPE descriptors
    given: torch.Tensor | None = None  # (C, F, h, w) clean latents written to the cache as they are
    known: torch.Tensor | None = None  # (C, k, h, w) first k frames fixed during denoising (I2V)
    role: str = "G"  # G(enerated), R(eference), P(refix), I(mage-seeded)


@dataclass
class Rollout:
    chunks: list[Chunk]
    shape: tuple[int, int, int]  # (C, h, w) latent channels and size


@dataclass
class StepTrace:
    chunk: int
    step: int
    timesteps: torch.Tensor  # (F,) per frame
    latents: torch.Tensor  # (1, C, F, h, w) the input of this step
    velocity: torch.Tensor  # (B, C, F, h, w) raw per-branch prediction (text first, then null)


@dataclass
class RolloutResult:
    latents: list[torch.Tensor]  # per chunk (C, F, h, w), clean
    cache: KVCache
    attention: torch.Tensor | None = None  # (chunks, chunks) max over the recorded layers; rows of given chunks NaN
    traces: list[StepTrace] = field(default_factory=list)


def make_scheduler(cfg: GenerateConfig) -> object:
    from diffusers import FlowMatchEulerDiscreteScheduler, UniPCMultistepScheduler

    if cfg.scheduler == "euler":
        return FlowMatchEulerDiscreteScheduler(num_train_timesteps=1000, shift=cfg.shift)
    return UniPCMultistepScheduler(num_train_timesteps=1000, prediction_type="flow_prediction", use_flow_sigmas=True,
                                   flow_shift=cfg.shift, solver_order=2)


@torch.no_grad()
def sample_rollout(model: torch.nn.Module, rollout: Rollout, text: torch.Tensor, null_text: torch.Tensor,
                   cfg: GenerateConfig, seed: int, layers: set[int] | None = None,
                   trace: Callable[[StepTrace], None] | None = None) -> RolloutResult:
    """Run ``rollout``; ``text``/``null_text`` are (1, L, D). ``layers`` selects the recorded attention layers."""
    inner = getattr(model, "module", model)
    device = next(inner.parameters()).device
    guided = cfg.guidance > 1.0
    context = torch.cat([text, null_text]) if guided else text
    batch = context.shape[0]
    channels, height, width = rollout.shape
    tokens = (height // inner.config.patch_size[1]) * (width // inner.config.patch_size[2])
    cache = KVCache(len(inner.blocks))
    generator = torch.Generator().manual_seed(seed)
    recorder = AttentionRecorder(layers, len(rollout.chunks)) if layers else None
    result = RolloutResult([], cache)
    for slot, chunk in enumerate(rollout.chunks):
        frames = len(chunk.positions)
        positions = torch.tensor(chunk.positions)
        slots = torch.full((frames,), slot)
        cameras = chunk.cameras[None].to(device).expand(batch, -1, -1)
        if chunk.given is not None:
            x0 = chunk.given[None].to(device)
        else:
            x0 = _denoise(model, chunk, slot, (channels, frames, height, width), context, cameras, cache, cfg,
                          generator, device, recorder, trace)
        steps = torch.zeros(batch, frames, device=device)
        remind_forward(model, x0.expand(batch, -1, -1, -1, -1), steps, context,
                       CausalContext(positions, slots, cameras, cache=cache, write_cache=True))
        cache.commit(slots.repeat_interleave(tokens), slots.tolist(), positions.tolist())
        result.latents.append(x0[0])
    if recorder is not None and recorder.mass:
        mass = torch.stack(list(recorder.mass.values())).amax(dim=0)
        given = torch.tensor([c.given is not None for c in rollout.chunks])
        mass[given] = float("nan")
        result.attention = mass
    return result


def _denoise(model: torch.nn.Module, chunk: Chunk, slot: int, shape: tuple[int, ...], context: torch.Tensor,
             cameras: torch.Tensor, cache: KVCache, cfg: GenerateConfig, generator: torch.Generator,
             device: torch.device, recorder: AttentionRecorder | None,
             trace: Callable[[StepTrace], None] | None) -> torch.Tensor:
    batch, frames = context.shape[0], shape[1]
    scheduler = make_scheduler(cfg)
    scheduler.set_timesteps(cfg.steps, device=device)
    x = torch.randn((1, *shape), generator=generator).to(device)
    known = chunk.known.to(device)[None] if chunk.known is not None else None
    fixed = 0 if known is None else known.shape[2]
    positions, slots = torch.tensor(chunk.positions), torch.full((frames,), slot)
    timesteps = scheduler.timesteps
    for index, t in enumerate(timesteps):
        if known is not None:
            x[:, :, :fixed] = known
        per_frame = torch.full((frames,), float(t), device=device)
        per_frame[:fixed] = 0.0
        last = index == len(timesteps) - 1
        ctx = CausalContext(positions, slots, cameras, cache=cache, recorder=recorder if last else None)
        velocity = remind_forward(model, x.expand(batch, -1, -1, -1, -1), per_frame.expand(batch, -1), context, ctx)
        if trace is not None:
            trace(StepTrace(slot, index, per_frame.cpu(), x.clone().cpu(), velocity.clone().cpu()))
        guided = velocity[:1]
        if batch == 2:
            guided = velocity[1:] + cfg.guidance * (velocity[:1] - velocity[1:])
        x = scheduler.step(guided.float(), t, x.float(), return_dict=False)[0].to(x.dtype)
    if known is not None:
        x[:, :, :fixed] = known
    return x
