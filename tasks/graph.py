"""Frame-graph construction: from an interruption interval and its anchor/recovery frames to chunk nodes."""
from __future__ import annotations

from collections.abc import Mapping, Sequence

from schemas.constants import FPS, NUM_CHUNKS, chunk_frames, chunk_latents, frame_to_chunk
from schemas.graph_checks import graph_problems
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
    hidden_max_visibility: float | None = None,
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
        rec = next((f for f in sorted(recovery_frames) if frame_to_chunk(f) == src), chunk_frames(src)[0])
        for dst in anchors:
            edges.append(Edge(src=src, dst=dst, kind=EdgeKind.memory))
            anc = next((f for f in sorted(anchor_frames, reverse=True) if frame_to_chunk(f) == dst),
                       chunk_frames(dst)[1])
            gap = rec - anc
            gaps.append(TemporalGap(src=src, dst=dst, frames=gap, seconds=round(gap / FPS, 4), anchor_frame=anc,
                                    recovery_frame=rec))
    interruption = (Interruption() if kind is InterruptionKind.none
                    else Interruption(kind=kind, start_frame=start, end_frame=end))
    return FrameGraph(
        interruption=interruption, nodes=nodes, edges=edges,
        anchor_frames=sorted(anchor_frames), recovery_frames=sorted(recovery_frames),
        event_frames=dict(event_frames or {}), temporal_gaps=gaps,
        per_frame={k: [None if v is None else round(float(v), 5) for v in vals]
                   for k, vals in (per_frame or {}).items()},
        hidden_max_visibility=hidden_max_visibility,
    )


def chunked_graph(
    kind: InterruptionKind,
    first_chunk: int,
    last_chunk: int,
    visibility: Sequence[float],
    threshold: float,
    anchor_frames: Sequence[int] | None = None,
    recovery_frames: Sequence[int] | None = None,
    event_frames: Mapping[str, int] | None = None,
    per_frame: Mapping[str, Sequence[float | None]] | None = None,
) -> FrameGraph:
    """A graph whose interval is the whole chunks ``first_chunk..last_chunk`` (ReMind's nodes are latent chunks),
    with ``event_visibility`` and the hidden interval: the longest run of degraded chunks every frame of which shows
    at most ``threshold`` of the event. Anchor and recovery frames default to the frames either side of the
    interval; the result passes ``schemas.graph_checks`` or this raises ``GraphError``."""
    start, end = chunk_frames(first_chunk)[0], chunk_frames(last_chunk)[1]
    vis = [float(v) for v in visibility]
    hidden = [c for c in range(first_chunk, last_chunk + 1)
              if max(vis[chunk_frames(c)[0]:chunk_frames(c)[1] + 1]) <= threshold]
    if not hidden:
        raise GraphError(f"{kind.value}: no chunk in {first_chunk}..{last_chunk} hides the event "
                         f"(least visible chunk shows {min_chunk_max(vis, first_chunk, last_chunk):.3f})")
    runs: list[list[int]] = []
    for c in hidden:
        if runs and runs[-1][-1] == c - 1:
            runs[-1].append(c)
        else:
            runs.append([c])
    best = max(runs, key=len)
    events = {**(event_frames or {}), "hidden_start": chunk_frames(best[0])[0], "hidden_end": chunk_frames(best[-1])[1]}
    graph = build_graph(kind, start, end, anchor_frames=list(anchor_frames or [start - 1]),
                        recovery_frames=list(recovery_frames or [end + 1]), event_frames=events,
                        per_frame={**(per_frame or {}), "event_visibility": vis}, hidden_max_visibility=threshold)
    problems = graph_problems(graph)
    if problems:
        raise GraphError("; ".join(problems))
    return graph


def min_chunk_max(vis: Sequence[float], first_chunk: int, last_chunk: int) -> float:
    return min(max(vis[chunk_frames(c)[0]:chunk_frames(c)[1] + 1]) for c in range(first_chunk, last_chunk + 1))
