"""The run report's numbers are the manifest's: report.md tables, metrics.json and the shards agree, row for row.

On the mixed local folder (accepted, rejected and failed inputs) that tests/e2e already ingests once."""
from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import pytest

from tasks.publish.manifest import read_manifest
from tasks.shards.validate import validate_path

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]


def _tables(markdown: str) -> dict[str, dict[str, int]]:
    """Every `### Title` followed by a two-column `| key | count |` table, as {title: {key: count}}."""
    tables: dict[str, dict[str, int]] = {}
    for block in re.split(r"^### ", markdown, flags=re.M)[1:]:
        title, _, body = block.partition("\n")
        rows = re.findall(r"^\| ([^|]+?) \| (\d+) \|$", body, flags=re.M)
        if rows:
            tables[title.strip()] = {k: int(v) for k, v in rows}
    return tables


def test_report_and_metrics_count_what_the_manifest_holds(local_run) -> None:
    out, expected, code = local_run
    assert code == 0
    rows = read_manifest(Path(out) / "manifest.parquet")
    metrics = json.loads((Path(out) / "metrics.json").read_text())
    accepted = [r for r in rows if r.status == "accepted"]

    status = Counter(r.status for r in rows)
    reasons = Counter(f"{r.status}: {r.reason}" for r in rows if r.status != "accepted")
    groups = Counter(r.event_group or "unknown" for r in accepted)
    kinds = Counter(r.interruption or "none" for r in accepted)
    assert {"accepted", "rejected", "failed"} <= set(status)  # the folder exercises every outcome
    assert metrics["inputs"] == len({r.clip_id for r in rows}) == len(expected)
    assert metrics["rows"] == len(rows)
    assert metrics["status"] == dict(status)
    assert metrics["reasons"] == dict(reasons)
    assert metrics["event_groups"] == dict(groups) and metrics["interruptions"] == dict(kinds)

    shards = sorted((Path(out) / "shards").glob("shard-*.tar"))
    assert metrics["shards"] == {p.name: p.stat().st_size for p in shards}
    assert {r.shard for r in accepted} == set(metrics["shards"])
    report = validate_path(Path(out), decode_video=False)
    assert report.samples == len(accepted) == status["accepted"]

    markdown = (Path(out) / "report.md").read_text()
    tables = _tables(markdown)
    assert tables["Rows by status"] == dict(status)
    assert tables["Rejected and failed by reason"] == dict(reasons)
    assert tables["Accepted by event group"] == dict(groups)
    assert tables["Accepted by interruption"] == dict(kinds)
    assert f"- inputs: {len(expected)}, candidate rows: {len(rows)}" in markdown
    for name in metrics["shards"]:
        assert f"| {name} |" in markdown

    # Where the time went: each stage's busy fraction is its workers' seconds inside the stage over the executor's
    # wall time; the report names the stage with the most busy seconds per worker; every processed input went
    # through every stage (failed ones are counted where they failed and skip the rest).
    busy, pipeline = metrics["stage_busy_fraction"], metrics["pipeline"]
    stages = pipeline["stages"]
    assert set(busy) == set(stages) and {"decode-source", "detect-scene-cuts", "write-samples"} <= set(stages)
    assert stages["decode-source"]["items"] == metrics["clips_processed"]
    for name, stage in stages.items():
        assert 0 <= busy[name] <= 1 and stage["queue_max"] <= stage["workers"] + 3
        assert busy[name] == pytest.approx(stage["busy_s"] / (stage["workers"] * pipeline["wall_s"]), abs=0.01)
    per_worker = {name: s["busy_s"] / s["workers"] for name, s in stages.items()}
    assert pipeline["bottleneck"] == max(per_worker, key=per_worker.get)
    assert f"Bottleneck: **{pipeline['bottleneck']}**" in markdown
    assert pipeline["wall_s"] <= metrics["wall_s"]
