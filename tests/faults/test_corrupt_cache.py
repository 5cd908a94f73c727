"""Corrupted cached intermediates (flipped bytes in a staged sample, a truncated ledger entry, a lost staging
folder): each is detected before packing, its clip is recomputed and named in the report, and the output
equals an uninterrupted run's."""
from __future__ import annotations

import json
import re
import shutil

import pytest

from tests.faults.helpers import (BACKENDS, CLIPS, CONFIG_TEXT, assert_same_output, backend_config, flip_byte,
                                  manifest_rows, prepacked_copy)

pytestmark = [pytest.mark.slow, pytest.mark.faults, pytest.mark.timeout(600)]


def _accepted(reference) -> list[tuple[str, str]]:
    return [(r["clip_id"], r["key"]) for r in manifest_rows(reference) if r["status"] == "accepted"]


@pytest.mark.parametrize("backend", BACKENDS)
def test_corrupt_cache_is_detected_and_recomputed(prefect_server, reference_out, tmp_path, backend):
    from flows.ingest import ingest

    out = prepacked_copy(reference_out, tmp_path / "out")
    (flipped_clip, flipped_key), (truncated_clip, _), (lost_clip, lost_key) = _accepted(reference_out)[:3]
    flip_byte(out / "cache" / "samples" / flipped_key / "mp4")  # also the hard-linked cache/windows clean.mp4
    ledger = out / "cache" / "clips" / f"{truncated_clip}.json"
    ledger.write_bytes(ledger.read_bytes()[:100])  # a torn ledger entry
    shutil.rmtree(out / "cache" / "samples" / lost_key)
    config = tmp_path / "config.yaml"
    config.write_text(backend_config(backend))

    summary = ingest(source=f"synthetic:{CLIPS}", out=str(out), config_path=str(config))

    metrics = json.loads((out / "metrics.json").read_text())
    reasons = metrics["redo_reasons"]
    assert sorted(reasons) == sorted([flipped_clip, truncated_clip, lost_clip]), reasons
    assert reasons[flipped_clip] == f"staged sample {flipped_key} is corrupt (checksum mismatch)"
    assert reasons[truncated_clip].startswith("unreadable ledger entry")
    assert reasons[lost_clip] == f"staged sample {lost_key} is missing"
    assert summary["clips_processed"] == 3 and summary["clips_reused"] == CLIPS - 3
    report = (out / "report.md").read_text()
    assert "Recomputed cached clips" in report and f"{flipped_clip}: staged sample {flipped_key} is corrupt" in report
    assert_same_output(out, reference_out)  # the recomputed samples are byte-identical to the clean run's


def test_silently_corrupted_graph_member_is_recomputed(prefect_server, reference_out, tmp_path):
    from flows.ingest import ingest

    out = prepacked_copy(reference_out, tmp_path / "out")
    clip_id, key = _accepted(reference_out)[0]
    graph = out / "cache" / "samples" / key / "graph.json"
    text = graph.read_text()
    match = re.search(r"[1-8]", text)  # one digit changed: still valid JSON, still a plausible graph
    graph.write_text(text[:match.start()] + str(int(match.group()) + 1) + text[match.end():])
    config = tmp_path / "config.yaml"
    config.write_text(CONFIG_TEXT)

    ingest(source=f"synthetic:{CLIPS}", out=str(out), config_path=str(config))

    assert clip_id in json.loads((out / "metrics.json").read_text())["redo_reasons"]
    assert_same_output(out, reference_out)
