"""graph.json: the frame graph of one sample (ReMind Sec. 3.1, Appendix F.2).

Minimal contract (never broken, only extended): 81 frames at 16 fps, 21 latent frames in 7 chunks of 3, one node
per chunk with a role, temporal and memory edges between chunks, and the interruption interval. Extensions: the
anchor and recovery frames, named event frames, explicit temporal gaps and per-frame fields (81 entries each).
"""
from __future__ import annotations

from enum import Enum

from pydantic import BaseModel, ConfigDict, Field, model_validator

from schemas.constants import (
    CHUNK_SIZE, FPS, LATENT_FRAMES, NUM_CHUNKS, NUM_FRAMES, chunk_frames, chunk_latents, frame_to_chunk)
from schemas.version import SCHEMA_VERSION


class InterruptionKind(str, Enum):
    none = "none"
    camera_loop = "camera_loop"
    light_toggle = "light_toggle"
    occluder = "occluder"
    zoom = "zoom"
    exit_entry = "exit_entry"


class NodeRole(str, Enum):
    anchor = "anchor"  # protected clean state before the interruption
    context = "context"
    degraded = "degraded"  # overlaps the interruption interval
    recovery = "recovery"  # first chunk whose frames follow the interruption


class EdgeKind(str, Enum):
    temporal = "temporal"
    memory = "memory"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Interruption(_Strict):
    kind: InterruptionKind = InterruptionKind.none
    start_frame: int | None = Field(None, ge=0, lt=NUM_FRAMES, description="First degraded frame.")
    end_frame: int | None = Field(None, ge=0, lt=NUM_FRAMES, description="Last degraded frame.")


class Node(_Strict):
    chunk: int = Field(ge=0, lt=NUM_CHUNKS)
    role: NodeRole
    frames: tuple[int, int]
    latents: tuple[int, int]


class Edge(_Strict):
    src: int = Field(ge=0, lt=NUM_CHUNKS)
    dst: int = Field(ge=0, lt=NUM_CHUNKS)
    kind: EdgeKind


class TemporalGap(_Strict):
    """Elapsed time between a memory edge's ends: what the model must bridge."""

    src: int = Field(ge=0, lt=NUM_CHUNKS, description="Recovery chunk.")
    dst: int = Field(ge=0, lt=NUM_CHUNKS, description="Anchor chunk.")
    frames: int = Field(ge=0, description="Frames from the last anchor frame to the recovery frame.")
    seconds: float = Field(ge=0)
    anchor_frame: int | None = Field(None, ge=0, lt=NUM_FRAMES, description="The anchor chunk's last clean frame "
                                     "(its anchor_frames entry when it holds one).")
    recovery_frame: int | None = Field(None, ge=0, lt=NUM_FRAMES, description="The recovery chunk's recovery frame.")


class FrameGraph(_Strict):
    schema_version: str = SCHEMA_VERSION
    num_frames: int = NUM_FRAMES
    fps: int = FPS
    latent_frames: int = LATENT_FRAMES
    chunk_size: int = CHUNK_SIZE
    interruption: Interruption = Interruption()
    nodes: list[Node]
    edges: list[Edge]
    anchor_frames: list[int] = Field(default_factory=list, description="Protected clean frames before the interval.")
    recovery_frames: list[int] = Field(default_factory=list, description="Frames where the clean view returns.")
    event_frames: dict[str, int] = Field(
        default_factory=dict, description="Named frames, e.g. enter, full_cover, exit, peak, return, exit_frame.")
    temporal_gaps: list[TemporalGap] = Field(default_factory=list)
    hidden_max_visibility: float | None = Field(
        None, ge=0, le=1, description="Threshold of the hidden interval: event_frames hidden_start..hidden_end are "
                                      "whole chunks whose every frame has per_frame.event_visibility at most this.")
    per_frame: dict[str, list[float | None]] = Field(
        default_factory=dict,
        description="Per-frame fields, 81 entries each: light_level, occluder_coverage, crop_scale, "
                    "pose_distance_deg, subject_visible, event_state, event_visibility (fraction of the dynamic "
                    "region visible in the degraded frame, times the light level).")

    @model_validator(mode="after")
    def _invariants(self) -> "FrameGraph":
        problems = self.problems()
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def problems(self) -> list[str]:
        """Every broken invariant, as a sentence. Empty when the graph is valid."""
        out: list[str] = []
        fixed = {"num_frames": NUM_FRAMES, "fps": FPS, "latent_frames": LATENT_FRAMES, "chunk_size": CHUNK_SIZE}
        for name, expected in fixed.items():
            if getattr(self, name) != expected:
                out.append(f"{name} is {getattr(self, name)}, expected {expected}")
        if [n.chunk for n in self.nodes] != list(range(NUM_CHUNKS)):
            out.append(f"nodes must be exactly chunks 0..{NUM_CHUNKS - 1} in order, got {[n.chunk for n in self.nodes]}")
            return out
        for node in self.nodes:
            if tuple(node.frames) != chunk_frames(node.chunk) or tuple(node.latents) != chunk_latents(node.chunk):
                out.append(f"node {node.chunk} spans frames {node.frames} latents {node.latents}, expected "
                           f"{chunk_frames(node.chunk)} {chunk_latents(node.chunk)}")
        for edge in self.edges:
            if edge.kind is EdgeKind.memory and not edge.dst < edge.src:
                out.append(f"memory edge {edge.src}->{edge.dst} does not point back in time")
            if edge.kind is EdgeKind.temporal and edge.dst != edge.src + 1:
                out.append(f"temporal edge {edge.src}->{edge.dst} does not link consecutive chunks")
        for name, values in self.per_frame.items():
            if len(values) != NUM_FRAMES:
                out.append(f"per_frame.{name} has {len(values)} entries, expected {NUM_FRAMES}")
        for frame in [*self.anchor_frames, *self.recovery_frames, *self.event_frames.values()]:
            if not 0 <= frame < NUM_FRAMES:
                out.append(f"frame index {frame} outside 0..{NUM_FRAMES - 1}")
                return out
        out.extend(self._interruption_problems())
        return out

    def _interruption_problems(self) -> list[str]:
        out: list[str] = []
        itr = self.interruption
        roles = {n.chunk: n.role for n in self.nodes}
        if itr.kind is InterruptionKind.none:
            if itr.start_frame is not None or itr.end_frame is not None:
                out.append("interruption kind none must not have start_frame/end_frame")
            if any(r in (NodeRole.degraded, NodeRole.recovery) for r in roles.values()):
                out.append("a clean (none) graph has no degraded or recovery nodes")
            return out
        if itr.start_frame is None or itr.end_frame is None or itr.start_frame > itr.end_frame:
            return [f"interruption {itr.kind.value} needs start_frame <= end_frame, got "
                    f"{itr.start_frame}..{itr.end_frame}"]
        anchors = [c for c, r in roles.items() if r is NodeRole.anchor]
        degraded = [c for c, r in roles.items() if r is NodeRole.degraded]
        recovery = [c for c, r in roles.items() if r is NodeRole.recovery]
        if not anchors:
            out.append("an interrupted graph needs at least one anchor node")
        if not degraded:
            out.append("an interrupted graph needs at least one degraded node")
        if not recovery:
            out.append("an interrupted graph needs a recovery node after the interruption")
        if anchors and degraded and max(anchors) >= min(degraded):
            out.append(f"anchor chunks {anchors} must precede degraded chunks {degraded}")
        if recovery and degraded and min(recovery) <= max(degraded):
            out.append(f"recovery chunks {recovery} must follow degraded chunks {degraded}")
        if any(f >= itr.start_frame for f in self.anchor_frames):
            out.append(f"anchor frames {self.anchor_frames} must precede the interruption at {itr.start_frame}")
        if any(f <= itr.end_frame for f in self.recovery_frames):
            out.append(f"recovery frames {self.recovery_frames} must follow the interruption ending {itr.end_frame}")
        for frame in range(itr.start_frame, itr.end_frame + 1):
            if roles[frame_to_chunk(frame)] in (NodeRole.anchor, NodeRole.recovery):
                out.append(f"interrupted frame {frame} lies in a {roles[frame_to_chunk(frame)].value} chunk")
                break
        memory = {(e.src, e.dst) for e in self.edges if e.kind is EdgeKind.memory}
        for src in recovery:
            for dst in anchors:
                if (src, dst) not in memory:
                    out.append(f"missing memory edge recovery {src} -> anchor {dst}")
        return out

    def roles(self) -> list[NodeRole]:
        return [n.role for n in self.nodes]
