"""schemas.graph_checks: every issue-12 invariant of a sample's frame graph, one broken graph each, and validate
(``check_sample``) reporting them."""
from __future__ import annotations

import numpy as np
import pytest

from schemas.constants import FPS, NUM_FRAMES
from schemas.graph import FrameGraph, InterruptionKind
from schemas.graph_checks import graph_problems
from schemas.sample import SampleMeta, SourceInfo
from schemas.sample_io import Sample
from schemas.validation import check_sample
from tasks.graph import GraphError, build_graph, chunked_graph

HIDDEN = [0.0 if 21 <= f <= 44 else 1.0 for f in range(NUM_FRAMES)]  # chunks 2 and 3 (frames 21..44)


def good() -> FrameGraph:
    """An occluder over chunks 1..4 (frames 9..56) hiding chunks 2..3."""
    return chunked_graph(InterruptionKind.occluder, 1, 4, HIDDEN, 0.05)


def broken(**changes) -> FrameGraph:
    data = good().model_dump()
    for dotted, value in changes.items():
        *path, last = dotted.split("__")
        target = data
        for part in path:
            target = target[int(part)] if isinstance(target, list) else target[part]
        target[last] = value
    return FrameGraph.model_validate(data)


def test_the_builders_graph_passes_and_names_its_hidden_interval():
    g = good()
    assert graph_problems(g) == []
    assert (g.interruption.start_frame, g.interruption.end_frame) == (9, 56)
    assert g.anchor_frames == [8] and g.recovery_frames == [57]
    assert (g.event_frames["hidden_start"], g.event_frames["hidden_end"]) == (21, 44)
    assert [(gap.anchor_frame, gap.recovery_frame, gap.frames) for gap in g.temporal_gaps] == [(8, 57, 49)]
    assert g.temporal_gaps[0].seconds == pytest.approx(49 / FPS)


@pytest.mark.parametrize("changes, expected", [
    ({"interruption__start_frame": 10}, "not on a latent-chunk boundary"),
    ({"interruption__end_frame": 55}, "not on a latent-chunk boundary"),
    ({"interruption__start_frame": 14, "anchor_frames": [12]}, "anchor frame 12 lies in chunk 1, not in an anchor"),
    ({"recovery_frames": [60, 70]}, "not in the recovery node"),
    ({"temporal_gaps__0__frames": 48}, "expected 49"),
    ({"temporal_gaps__0__anchor_frame": None}, "names no anchor_frame"),
    ({"hidden_max_visibility": None}, "hidden_max_visibility is missing"),
    ({"event_frames__hidden_start": 22}, "not whole chunks"),
    ({"event_frames__hidden_end": 56}, "shows up to 1.000"),
])
def test_each_broken_invariant_is_named(changes, expected):
    problems = graph_problems(broken(**changes))
    assert any(expected in p for p in problems), problems


def test_no_hidden_chunk_and_missing_visibility_are_problems():
    half = [0.5 if 9 <= f <= 56 else 1.0 for f in range(NUM_FRAMES)]
    seen = good().model_dump()
    seen["per_frame"]["event_visibility"] = half
    problems = graph_problems(FrameGraph.model_validate(seen))
    assert any("no degraded chunk hides the event" in p and "0.500" in p for p in problems), problems
    del seen["per_frame"]["event_visibility"]
    assert "per_frame.event_visibility is missing" in graph_problems(FrameGraph.model_validate(seen))
    with pytest.raises(GraphError, match="no chunk in 1..4 hides the event"):
        chunked_graph(InterruptionKind.occluder, 1, 4, half, 0.05)


def test_a_hidden_chunk_must_be_whole():
    """Visible in one frame of each chunk: no whole chunk is hidden, though 22 of 24 frames are."""
    vis = list(HIDDEN)
    vis[26] = vis[40] = 0.2
    with pytest.raises(GraphError):
        chunked_graph(InterruptionKind.occluder, 1, 4, vis, 0.05)


def test_legacy_unaligned_graph_fails_the_checks():
    legacy = build_graph(InterruptionKind.light_toggle, 12, 43, anchor_frames=[11], recovery_frames=[44])
    problems = graph_problems(legacy)
    assert any("inside chunk 1" in p for p in problems) and any("recovery frame 44" in p for p in problems)
    assert "per_frame.event_visibility is missing" in problems


def _raw(graph: FrameGraph, degraded_text: str) -> dict:
    meta = SampleMeta(key="k-w00", clip_id="k", window=0, source=SourceInfo(kind="local", uri="u"),
                      source_span_s=(0.0, 5.0), interruption=graph.interruption.kind, config_hash="t", run_id="t")
    sample = Sample(key="k-w00", mp4=b"not decoded here", graph=graph, meta=meta, degraded_mp4=b"nor this",
                    degraded_caption=degraded_text)
    return {"__key__": "k-w00", **sample.to_members()}


def test_validate_reports_graph_and_degraded_text_problems():
    assert not [p for p in check_sample(_raw(good(), "a board passes"), decode_video=False)
                if "graph.json" in p or "degraded.txt" in p]
    problems = check_sample(_raw(broken(**{"interruption__start_frame": 10}), ""), decode_video=False)
    assert any(p.startswith("graph.json: interruption starts at frame 10") for p in problems), problems
    assert "degraded.txt must be present exactly when degraded.mp4 is" in problems
    assert np.isfinite(good().per_frame["event_visibility"]).all()
