"""Frame-graph checks beyond the model's own invariants (ReMind Appendix F.2, issue 12): intervals on latent-chunk
boundaries, anchor/recovery frames inside their nodes, temporal gaps in frames, and a hidden interval.

``FrameGraph.problems`` keeps the minimal contract every graph has met since 1.0.0; these checks are what
``validate`` adds for samples: every problem one sentence.
"""
from __future__ import annotations

from schemas.constants import NUM_FRAMES, chunk_frames, frame_to_chunk
from schemas.graph import FrameGraph, InterruptionKind, NodeRole

DEFAULT_HIDDEN_MAX_VISIBILITY = 0.05


def _chunks_of(graph: FrameGraph, role: NodeRole) -> list[int]:
    return [n.chunk for n in graph.nodes if n.role is role]


def alignment_problems(graph: FrameGraph) -> list[str]:
    """The interval starts and ends on chunk boundaries; anchor and recovery frames lie in their nodes."""
    out: list[str] = []
    itr = graph.interruption
    if itr.kind is InterruptionKind.none or itr.start_frame is None or itr.end_frame is None:
        return out
    first, last = frame_to_chunk(itr.start_frame), frame_to_chunk(itr.end_frame)
    if itr.start_frame != chunk_frames(first)[0]:
        out.append(f"interruption starts at frame {itr.start_frame}, inside chunk {first} "
                   f"(frames {chunk_frames(first)}): not on a latent-chunk boundary")
    if itr.end_frame != chunk_frames(last)[1]:
        out.append(f"interruption ends at frame {itr.end_frame}, inside chunk {last} "
                   f"(frames {chunk_frames(last)}): not on a latent-chunk boundary")
    anchors, recovery = _chunks_of(graph, NodeRole.anchor), _chunks_of(graph, NodeRole.recovery)
    for frame in graph.anchor_frames:
        if frame_to_chunk(frame) not in anchors:
            out.append(f"anchor frame {frame} lies in chunk {frame_to_chunk(frame)}, not in an anchor node {anchors}")
    for frame in graph.recovery_frames:
        if frame_to_chunk(frame) not in recovery:
            out.append(f"recovery frame {frame} lies in chunk {frame_to_chunk(frame)}, not in the recovery node "
                       f"{recovery}")
    if not graph.anchor_frames:
        out.append("an interrupted graph needs anchor_frames")
    if not graph.recovery_frames:
        out.append("an interrupted graph needs recovery_frames")
    return out


def gap_problems(graph: FrameGraph) -> list[str]:
    """Each memory edge's gap is in frames: recovery frame minus the anchor chunk's anchor frame."""
    out: list[str] = []
    for gap in graph.temporal_gaps:
        if gap.anchor_frame is None or gap.recovery_frame is None:
            out.append(f"temporal gap {gap.src}->{gap.dst} names no anchor_frame/recovery_frame")
            continue
        if frame_to_chunk(gap.anchor_frame) != gap.dst or frame_to_chunk(gap.recovery_frame) != gap.src:
            out.append(f"temporal gap {gap.src}->{gap.dst} runs from frame {gap.anchor_frame} to "
                       f"{gap.recovery_frame}, outside its chunks")
        if gap.frames != gap.recovery_frame - gap.anchor_frame:
            out.append(f"temporal gap {gap.src}->{gap.dst} is {gap.frames} frames, expected "
                       f"{gap.recovery_frame - gap.anchor_frame} (frame {gap.recovery_frame} - frame {gap.anchor_frame})")
    return out


def hidden_problems(graph: FrameGraph) -> list[str]:
    """An interrupted graph has per-frame event_visibility and a hidden interval of whole degraded chunks."""
    itr = graph.interruption
    vis = graph.per_frame.get("event_visibility")
    if vis is None:
        return ["per_frame.event_visibility is missing"]
    if itr.kind is InterruptionKind.none:
        return []
    if any(v is None for v in vis):
        return ["per_frame.event_visibility has missing entries"]
    threshold = graph.hidden_max_visibility
    if threshold is None:
        return ["hidden_max_visibility is missing"]
    degraded = _chunks_of(graph, NodeRole.degraded)
    hidden = [c for c in degraded if max(vis[chunk_frames(c)[0]:chunk_frames(c)[1] + 1]) <= threshold]  # type: ignore
    out: list[str] = []
    if not hidden:
        least = min(max(vis[chunk_frames(c)[0]:chunk_frames(c)[1] + 1]) for c in degraded)  # type: ignore
        out.append(f"no degraded chunk hides the event: the darkest chunk still shows {least:.3f} of it "
                   f"(hidden_max_visibility {threshold})")
    start, end = graph.event_frames.get("hidden_start"), graph.event_frames.get("hidden_end")
    if start is None or end is None:
        out.append("event_frames hidden_start/hidden_end are missing")
    elif not (start == chunk_frames(frame_to_chunk(start))[0] and end == chunk_frames(frame_to_chunk(end))[1]
              and 0 <= start <= end < NUM_FRAMES):
        out.append(f"hidden interval {start}..{end} is not whole chunks")
    elif any(frame_to_chunk(f) not in degraded for f in (start, end)):
        out.append(f"hidden interval {start}..{end} is not inside the degraded nodes {degraded}")
    elif max(vis[start:end + 1]) > threshold:  # type: ignore[type-var]
        out.append(f"hidden interval {start}..{end} shows up to {max(vis[start:end + 1]):.3f} of the event "  # type: ignore
                   f"(hidden_max_visibility {threshold})")
    return out


def graph_problems(graph: FrameGraph) -> list[str]:
    """Every issue-12 invariant of a sample's graph."""
    return [*alignment_problems(graph), *gap_problems(graph), *hidden_problems(graph)]
