"""The training curriculum (ReMind Sec. 3.4): samplers over a sample's frame graph, mixed by config weights.

Every regime produces a ``Plan``: an ordered list of chunk slots. Each slot names the video it comes from
(``clean`` or ``observed`` = the degraded clip when there is one), the source chunk, its temporal RoPE position,
its noise level sigma, whether the loss sees it, and whether it was dropped (pure noise). Attention is always
chunk-causal over the slot order, so the regimes differ only in their slots:

- all_history: all 7 chunks at their positions, independent per-chunk sigmas, all supervised.
- noisy_memory: chunks before the frontier are clean or at high noise (one anchor kept clean); suffix supervised.
- node_drop: degraded nodes (and, at random, other past nodes) become pure noise; one anchor kept; suffix supervised.
- v2v_frontier: a clean or degraded clean-latent prefix (sigma 0), loss on the recovery suffix only.
- reference_cache: clean anchor chunks at their original positions, then the observed clip from the chunk after
  them, shifted G chunks later (sampled gap); loss on the target only.

The frontier is the first recovery chunk, or a random chunk in 2..6 for a graph without one.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch

from schemas.constants import CHUNK_SIZE, NUM_CHUNKS
from schemas.graph import FrameGraph, NodeRole
from training.config import REGIMES, CurriculumConfig

Source = Literal["clean", "observed"]


@dataclass(frozen=True)
class Slot:
    source: Source
    chunk: int
    position: int  # temporal RoPE position of the chunk's first latent frame
    sigma: float
    supervised: bool
    dropped: bool = False


@dataclass(frozen=True)
class Plan:
    regime: str
    slots: tuple[Slot, ...]

    def frame_positions(self) -> list[int]:
        return [s.position + i for s in self.slots for i in range(CHUNK_SIZE)]

    def frame_slots(self) -> list[int]:
        return [k for k in range(len(self.slots)) for _ in range(CHUNK_SIZE)]

    def frame_sigmas(self) -> list[float]:
        return [s.sigma for s in self.slots for _ in range(CHUNK_SIZE)]

    def frame_loss_mask(self) -> list[bool]:
        return [s.supervised for s in self.slots for _ in range(CHUNK_SIZE)]

    def slot_mask(self) -> np.ndarray:
        """(S, S) boolean: slot i attends to slot j iff j <= i (chunk-causal over the slot order)."""
        return np.tril(np.ones((len(self.slots), len(self.slots)), dtype=bool))


def sample_regime(weights: dict[str, float], rng: np.random.Generator) -> str:
    names = [r for r in REGIMES if weights.get(r, 0.0) > 0]
    probs = np.array([weights[r] for r in names], dtype=np.float64)
    return names[int(rng.choice(len(names), p=probs / probs.sum()))]


def sample_sigma(rng: np.random.Generator, cfg: CurriculumConfig) -> float:
    """u ~ U(0, 1) shifted towards high noise: k u / (1 + (k - 1) u), clipped to [sigma_min, sigma_max]."""
    u = rng.uniform()
    k = cfg.timestep_shift
    return float(np.clip(k * u / (1 + (k - 1) * u), cfg.sigma_min, cfg.sigma_max))


def _chunks(graph: FrameGraph, role: NodeRole) -> list[int]:
    return [n.chunk for n in graph.nodes if n.role is role]


def frontier(graph: FrameGraph, rng: np.random.Generator) -> int:
    recovery = _chunks(graph, NodeRole.recovery)
    return min(recovery) if recovery else int(rng.integers(2, NUM_CHUNKS))


def _kept_anchor(graph: FrameGraph, before: int, rng: np.random.Generator) -> int:
    anchors = [c for c in _chunks(graph, NodeRole.anchor) if c < before]
    return int(rng.choice(anchors)) if anchors else 0


def _suffix(source: Source, first: int, rng: np.random.Generator, cfg: CurriculumConfig, shift: int = 0) -> list[Slot]:
    return [Slot(source, c, CHUNK_SIZE * c + shift, sample_sigma(rng, cfg), True) for c in range(first, NUM_CHUNKS)]


def all_history(graph: FrameGraph, rng: np.random.Generator, cfg: CurriculumConfig) -> list[Slot]:
    return _suffix("observed", 0, rng, cfg)


def noisy_memory(graph: FrameGraph, rng: np.random.Generator, cfg: CurriculumConfig) -> list[Slot]:
    f = frontier(graph, rng)
    keep = _kept_anchor(graph, f, rng)
    noisy = {c for c in range(f) if c != keep and rng.uniform() < cfg.noisy_memory.prob}
    candidates = [c for c in range(f) if c != keep]
    if not noisy and candidates:
        noisy = {int(rng.choice(candidates))}
    nm = cfg.noisy_memory
    past = [Slot("observed", c, CHUNK_SIZE * c, float(rng.uniform(nm.sigma_min, nm.sigma_max)) if c in noisy else 0.0,
                 False) for c in range(f)]
    return past + _suffix("observed", f, rng, cfg)


def node_drop(graph: FrameGraph, rng: np.random.Generator, cfg: CurriculumConfig) -> list[Slot]:
    f = frontier(graph, rng)
    keep = _kept_anchor(graph, f, rng)
    degraded = set(_chunks(graph, NodeRole.degraded))
    others = [c for c in range(f) if c != keep and c not in degraded]
    dropped = degraded | {c for c in others if rng.uniform() < cfg.node_drop.prob}
    if not dropped and others:
        dropped = {int(rng.choice(others))}
    past = [Slot("observed", c, CHUNK_SIZE * c, 1.0, False, dropped=True) if c in dropped
            else Slot("observed", c, CHUNK_SIZE * c, 0.0, False) for c in range(f)]
    return past + _suffix("observed", f, rng, cfg)


def v2v_frontier(graph: FrameGraph, rng: np.random.Generator, cfg: CurriculumConfig,
                 has_degraded: bool = True) -> list[Slot]:
    f = frontier(graph, rng)
    degraded = has_degraded and rng.uniform() < cfg.v2v_frontier.degraded_prefix_prob
    source: Source = "observed" if degraded else "clean"  # the suffix continues the prefix's own video
    return [Slot(source, c, CHUNK_SIZE * c, 0.0, False) for c in range(f)] + _suffix(source, f, rng, cfg)


def reference_cache(graph: FrameGraph, rng: np.random.Generator, cfg: CurriculumConfig) -> list[Slot]:
    anchors = _chunks(graph, NodeRole.anchor) or [0]
    count = int(rng.integers(1, min(cfg.reference_cache.max_refs, len(anchors)) + 1))
    refs = anchors[-count:]  # the last clean states before the interruption
    gap = int(rng.integers(cfg.reference_cache.gap_min, cfg.reference_cache.gap_max + 1))
    references = [Slot("clean", c, CHUNK_SIZE * c, 0.0, False) for c in refs]
    return references + _suffix("observed", max(refs) + 1, rng, cfg, shift=CHUNK_SIZE * gap)


def plan_regime(regime: str, graph: FrameGraph, rng: np.random.Generator, cfg: CurriculumConfig,
                has_degraded: bool = True) -> Plan:
    """The slots of ``regime`` for one sample."""
    if regime == "v2v_frontier":
        slots = v2v_frontier(graph, rng, cfg, has_degraded)
    else:
        sampler = {"all_history": all_history, "noisy_memory": noisy_memory, "node_drop": node_drop,
                   "reference_cache": reference_cache}[regime]
        slots = sampler(graph, rng, cfg)
    return Plan(regime, tuple(slots))


@dataclass
class TrainInputs:
    """One assembled training sequence (batch of one): what the model sees and what the loss compares."""

    x0: torch.Tensor  # (1, C, F, h, w) clean latents of the slots
    noise: torch.Tensor
    xt: torch.Tensor  # (1 - sigma) x0 + sigma noise, per frame
    sigmas: torch.Tensor  # (1, F)
    loss_mask: torch.Tensor  # (1, F) bool
    positions: torch.Tensor  # (F,)
    slots: torch.Tensor  # (F,)
    cameras: torch.Tensor  # (1, F, 14)


def assemble(plan: Plan, latents: dict[str, torch.Tensor], cameras: dict[str, torch.Tensor],
             generator: torch.Generator) -> TrainInputs:
    """Gather each slot's chunk from its source (C, 21, h, w) and noise it: x_t = (1 - s) x0 + s eps.

    A source missing from ``latents`` (no degraded clip) falls back to ``clean``.
    """
    def pick(table: dict[str, torch.Tensor], source: str) -> torch.Tensor:
        return table.get(source, table["clean"])

    x0 = torch.cat([pick(latents, s.source)[:, CHUNK_SIZE * s.chunk:CHUNK_SIZE * (s.chunk + 1)]
                    for s in plan.slots], dim=1)[None]
    cams = torch.cat([pick(cameras, s.source)[CHUNK_SIZE * s.chunk:CHUNK_SIZE * (s.chunk + 1)]
                      for s in plan.slots])[None]
    noise = torch.randn(x0.shape, generator=generator, dtype=x0.dtype, device=generator.device).to(x0.device)
    sigmas = torch.tensor(plan.frame_sigmas(), dtype=x0.dtype, device=x0.device)[None]
    s = sigmas[:, None, :, None, None]
    return TrainInputs(
        x0=x0, noise=noise, xt=(1 - s) * x0 + s * noise, sigmas=sigmas,
        loss_mask=torch.tensor(plan.frame_loss_mask(), device=x0.device)[None],
        positions=torch.tensor(plan.frame_positions()), slots=torch.tensor(plan.frame_slots()), cameras=cams)
