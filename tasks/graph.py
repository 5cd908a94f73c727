"""Frame-graph construction: from an interruption interval and its anchor/recovery frames to chunk nodes."""
from __future__ import annotations

from collections.abc import Mapping, Sequence

from schemas.constants import FPS, NUM_CHUNKS, chunk_frames, chunk_latents, frame_to_chunk
from schemas.graph import Edge, EdgeKind, FrameGraph, Interruption, InterruptionKind, Node, NodeRole, TemporalGap


class GraphError(ValueError):
    """The interruption cannot be expressed as a valid graph (e.g. it leaves no clean anchor chunk)."""


def chunk_roles(kind: InterruptionKind, start: int | None, end: int | None) -> list[NodeRole]:
    """Chunks overlapping [start, end] are degraded; chunks wholly before are anchors (the last clean state
    before the interruption is the memory anchor); the first chunk wholly after is the recovery node."""
    if kind is InterruptionKind.none:
        return [NodeRole.anchor] + [NodeRole.context] * (NUM_CHUNKS - 1)
    assert start is not None and end is not None
    first, last = frame_to_chunk(start), frame_to_chunk(end)
    if first == 0:
        raise GraphError(f"interruption starts at frame {start}, inside chunk 0: no clean anchor chunk")
    if last >= NUM_CHUNKS - 1:
        raise GraphError(f"interruption ends at frame {end}, in the last chunk: no recovery chunk")
    roles = []
    for chunk in range(NUM_CHUNKS):
        if chunk < first:
            roles.append(NodeRole.anchor)
        elif chunk <= last:
            roles.append(NodeRole.degraded)
        elif chunk == last + 1:
            roles.append(NodeRole.recovery)
        else:
            roles.append(NodeRole.context)
    return roles


def build_graph(
    kind: InterruptionKind = InterruptionKind.none,
    start: int | None = None,
    end: int | None = None,
    anchor_frames: Sequence[int] = (),
    recovery_frames: Sequence[int] = (),
    event_frames: Mapping[str, int] | None = None,
    per_frame: Mapping[str, Sequence[float | None]] | None = None,
) -> FrameGraph:
    """A validated graph: temporal edges chain the chunks, memory edges run from recovery to every anchor."""
    roles = chunk_roles(kind, start, end)
    nodes = [Node(chunk=c, role=r, frames=chunk_frames(c), latents=chunk_latents(c)) for c, r in enumerate(roles)]
    edges = [Edge(src=c, dst=c + 1, kind=EdgeKind.temporal) for c in range(NUM_CHUNKS - 1)]
    gaps = []
    anchors = [c for c, r in enumerate(roles) if r is NodeRole.anchor]
    if kind is InterruptionKind.none:
        anchor_frames = anchor_frames or [0]
    for src in (c for c, r in enumerate(roles) if r is NodeRole.recovery):
        for dst in anchors:
            edges.append(Edge(src=src, dst=dst, kind=EdgeKind.memory))
            gap = chunk_frames(src)[0] - chunk_frames(dst)[1]
            gaps.append(TemporalGap(src=src, dst=dst, frames=gap, seconds=round(gap / FPS, 4)))
    interruption = (Interruption() if kind is InterruptionKind.none
                    else Interruption(kind=kind, start_frame=start, end_frame=end))
    return FrameGraph(
        interruption=interruption, nodes=nodes, edges=edges,
        anchor_frames=sorted(anchor_frames), recovery_frames=sorted(recovery_frames),
        event_frames=dict(event_frames or {}), temporal_gaps=gaps,
        per_frame={k: [None if v is None else round(float(v), 5) for v in vals]
                   for k, vals in (per_frame or {}).items()},
    )
