"""Hand-built frame graphs for the curriculum tests (built with schemas only)."""
from __future__ import annotations

from schemas.constants import NUM_CHUNKS, chunk_frames, chunk_latents
from schemas.graph import Edge, EdgeKind, FrameGraph, Interruption, InterruptionKind, Node, NodeRole


def make_graph(roles: list[str], kind: str = "occluder") -> FrameGraph:
    """Nodes with the given roles; the interruption spans the degraded chunks; memory edges recovery -> anchor."""
    nodes = [Node(chunk=c, role=NodeRole(r), frames=chunk_frames(c), latents=chunk_latents(c))
             for c, r in enumerate(roles)]
    edges = [Edge(src=c, dst=c + 1, kind=EdgeKind.temporal) for c in range(NUM_CHUNKS - 1)]
    degraded = [c for c, r in enumerate(roles) if r == "degraded"]
    if kind == "none":
        return FrameGraph(nodes=nodes, edges=edges)
    anchors = [c for c, r in enumerate(roles) if r == "anchor"]
    recovery = [c for c, r in enumerate(roles) if r == "recovery"]
    edges += [Edge(src=s, dst=d, kind=EdgeKind.memory) for s in recovery for d in anchors]
    interruption = Interruption(kind=InterruptionKind(kind), start_frame=chunk_frames(min(degraded))[0],
                                end_frame=chunk_frames(max(degraded))[1])
    return FrameGraph(nodes=nodes, edges=edges, interruption=interruption)


OCCLUDER = make_graph(["anchor", "anchor", "degraded", "degraded", "recovery", "context", "context"])
LATE_LOOP = make_graph(["anchor", "anchor", "anchor", "degraded", "degraded", "recovery", "context"], "camera_loop")
CLEAN = make_graph(["anchor"] + ["context"] * 6, "none")
