"""The format: graph invariants, generated JSON/Arrow schemas, the committed JSON Schema files."""
from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pytest

from schemas import jsonschema
from schemas.arrow import arrow_schema, rows_to_table
from schemas.constants import chunk_frames, frame_to_chunk, frame_to_latent
from schemas.graph import FrameGraph, InterruptionKind, NodeRole
from schemas.manifest import ManifestRow
from schemas.sample import ENTRIES, SampleMeta
from tasks.graph import GraphError, build_graph


def test_frame_latent_chunk_map():
    assert frame_to_latent(0) == 0 and frame_to_latent(1) == 1 and frame_to_latent(4) == 1
    assert frame_to_latent(5) == 2 and frame_to_latent(80) == 20
    assert [chunk_frames(c) for c in (0, 6)] == [(0, 8), (69, 80)]
    assert all(frame_to_chunk(f) == c for c in range(7) for f in range(chunk_frames(c)[0], chunk_frames(c)[1] + 1))
    with pytest.raises(ValueError):
        frame_to_latent(81)


def test_clean_graph_contract():
    graph = build_graph()
    assert graph.num_frames == 81 and graph.fps == 16 and graph.latent_frames == 21 and graph.chunk_size == 3
    assert len(graph.nodes) == 7 and graph.roles()[0] is NodeRole.anchor
    assert all(r is NodeRole.context for r in graph.roles()[1:])
    assert graph.interruption.kind is InterruptionKind.none and graph.interruption.start_frame is None
    assert [(e.src, e.dst, e.kind.value) for e in graph.edges] == [(c, c + 1, "temporal") for c in range(6)]


def test_interrupted_graph_roles_edges_gaps():
    graph = build_graph(InterruptionKind.light_toggle, 24, 47, anchor_frames=[20], recovery_frames=[48],
                        per_frame={"light_level": [1.0] * 81})
    assert [r.value for r in graph.roles()] == ["anchor", "anchor", "degraded", "degraded", "degraded",
                                                "recovery", "context"]
    memory = [(e.src, e.dst) for e in graph.edges if e.kind.value == "memory"]
    assert memory == [(5, 0), (5, 1)]
    assert graph.temporal_gaps[1].frames == chunk_frames(5)[0] - chunk_frames(1)[1]


@pytest.mark.parametrize("start,end", [(3, 30), (20, 75)])
def test_interruption_without_anchor_or_recovery_is_refused(start, end):
    with pytest.raises(GraphError):
        build_graph(InterruptionKind.occluder, start, end)


def test_invariants_catch_broken_graphs():
    good = build_graph(InterruptionKind.zoom, 24, 47, anchor_frames=[10], recovery_frames=[50]).model_dump()
    cases = {
        "memory edge 0->5": lambda g: g["edges"].append({"src": 0, "dst": 5, "kind": "memory"}),
        "anchor frames": lambda g: g.update(anchor_frames=[30]),
        "recovery frames": lambda g: g.update(recovery_frames=[40]),
        "81": lambda g: g.update(per_frame={"crop_scale": [1.0] * 80}),
        "exactly chunks": lambda g: g["nodes"].pop(),
        "num_frames": lambda g: g.update(num_frames=80),
    }
    for expected, breaker in cases.items():
        broken = json.loads(json.dumps(good))
        breaker(broken)
        with pytest.raises(ValueError, match=expected):
            FrameGraph.model_validate(broken)


def test_committed_json_schemas_match_models():
    """Fails when a model changes without `remind-curate schema` being rerun and committed."""
    for name, text in jsonschema.generate().items():
        committed = (jsonschema.JSON_DIR / name).read_text()
        assert committed == text, f"schemas/json/{name} is stale: run `make schemas` and commit"


def test_arrow_schema_is_generated_from_the_model():
    schema = arrow_schema(ManifestRow)
    assert schema.names == list(ManifestRow.model_fields)
    assert schema.field("scores").type == pa.map_(pa.string(), pa.float64())
    assert schema.field("tags").type == pa.list_(pa.string())
    assert schema.field("window").nullable and not schema.field("clip_id").nullable
    row = ManifestRow(run_id="r", clip_id="c", source="local", uri="u", status="accepted", config_hash="h",
                      scores={"a": 1.0}, tags=["x"])
    table = rows_to_table(ManifestRow, [row])
    assert table.to_pylist()[0]["scores"] == [("a", 1.0)]
    assert arrow_schema(SampleMeta).field("geometry").type.num_fields == len(SampleMeta.model_fields["geometry"]
                                                                                .annotation.model_fields)


def test_entries_are_plain_types_only():
    assert all(ext.endswith((".mp4", ".json", ".npy", ".txt")) or ext in ("mp4", "txt") for ext in ENTRIES)
    assert ENTRIES["camera.npy"].shape == (81, 4, 4) and ENTRIES["depth.npy"].dtype == "float16"
    assert np.dtype(ENTRIES["intrinsics.npy"].dtype) == np.float32


def test_sample_meta_converts_to_arrow():
    meta = SampleMeta(key="k-w00", clip_id="k", window=0, source={"kind": "local", "uri": "u", "provenance": {"a": 1}},
                      source_span_s=(0.0, 5.0625), config_hash="h", run_id="r", augment={"kind": "none"})
    row = rows_to_table(SampleMeta, [meta]).to_pylist()[0]
    assert json.loads(row["source"]["provenance"]) == {"a": 1} and row["source_span_s"] == [0.0, 5.0625]
