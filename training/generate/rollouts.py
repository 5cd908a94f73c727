"""The three generation modes as rollouts over one sample's latents (16, 21, h, w) and cameras (21, 14).

- i2v: all 7 chunks generated at positions 0..20; the first latent frame (the clip's first frame) is fixed.
- v2v: the prefix (the degraded clip when the sample has one and ``v2v_prefix`` is degraded, else the clean clip) up
  to the first recovery chunk (``v2v_prefix_chunks`` without one) is given; the suffix is generated.
- reference: the last ``reference_count`` anchor chunks of the clean clip at their original positions, then the
  chunks after them generated G = ``reference_gap`` chunks later (positions + 3G), as the curriculum trains it.

``Plan.eval_chunks`` are the source chunks of the generated chunks: the clean clip's frames to compare with.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from schemas.constants import CHUNK_SIZE, NUM_CHUNKS
from schemas.graph import FrameGraph, NodeRole
from training.config import GenerateConfig
from training.generate.sampler import Chunk, Rollout

MODES = ("i2v", "v2v", "reference")


@dataclass
class Plan:
    rollout: Rollout
    source_chunks: list[int]  # the clip chunk each rollout chunk shows
    prefix_source: str  # "clean" / "observed" / "" (i2v)


def _frames(chunk: int) -> slice:
    return slice(chunk * CHUNK_SIZE, (chunk + 1) * CHUNK_SIZE)


def _positions(chunk: int, shift: int = 0) -> list[int]:
    return list(range(chunk * CHUNK_SIZE + shift, (chunk + 1) * CHUNK_SIZE + shift))


def _chunks_with(graph: FrameGraph, role: NodeRole) -> list[int]:
    return [n.chunk for n in graph.nodes if n.role is role]


def build_plan(mode: str, graph: FrameGraph, latents: dict[str, torch.Tensor], cameras: dict[str, torch.Tensor],
               cfg: GenerateConfig) -> Plan:
    clean, clean_cams = latents["clean"], cameras["clean"]
    shape = (clean.shape[0], clean.shape[2], clean.shape[3])
    if mode == "i2v":
        chunks = [Chunk(_positions(c), clean_cams[_frames(c)], role="G") for c in range(NUM_CHUNKS)]
        chunks[0].known, chunks[0].role = clean[:, :1], "I"
        return Plan(Rollout(chunks, shape), list(range(NUM_CHUNKS)), "")
    if mode == "v2v":
        recovery = _chunks_with(graph, NodeRole.recovery)
        frontier = min(recovery) if recovery else cfg.v2v_prefix_chunks
        source = "observed" if cfg.v2v_prefix == "degraded" and "observed" in latents else "clean"
        video, cams = latents[source], cameras[source]
        chunks = [Chunk(_positions(c), cams[_frames(c)], given=video[:, _frames(c)], role="P") for c in range(frontier)]
        chunks += [Chunk(_positions(c), cams[_frames(c)], role="G") for c in range(frontier, NUM_CHUNKS)]
        return Plan(Rollout(chunks, shape), list(range(NUM_CHUNKS)), source)
    if mode == "reference":
        anchors = _chunks_with(graph, NodeRole.anchor) or [0]
        refs = anchors[-cfg.reference_count:]
        first = max(refs) + 1
        if first >= NUM_CHUNKS:
            raise ValueError("no chunk left after the reference anchors")
        source = "observed" if "observed" in latents else "clean"
        shift = CHUNK_SIZE * cfg.reference_gap
        chunks = [Chunk(_positions(c), clean_cams[_frames(c)], given=clean[:, _frames(c)], role="R") for c in refs]
        chunks += [Chunk(_positions(c, shift), cameras[source][_frames(c)], role="G") for c in range(first, NUM_CHUNKS)]
        return Plan(Rollout(chunks, shape), refs + list(range(first, NUM_CHUNKS)), "clean")
    raise ValueError(f"unknown mode {mode!r} (expected one of {MODES})")


def latent_to_first_frame(latent: int) -> int:
    """The first video frame a latent frame decodes to (Wan VAE: frame 0 alone, then 4 per latent)."""
    return 0 if latent == 0 else 4 * latent - 3
