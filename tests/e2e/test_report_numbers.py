"""The run report's numbers are the manifest's: report.md tables, metrics.json and the shards agree, row for row.

On the mixed local folder (accepted, rejected and failed inputs) that tests/e2e already ingests once."""
from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import pytest

from tasks.manifest import read_manifest
from tasks.validate import validate_path

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

    # Where the time went: each stage's busy fraction is its seconds over the flow's wall time, the report names
    # the stage with the largest one, and no stage of this serial run was busy longer than the run lasted.
    busy, per_clip = metrics["stage_busy_fraction"], metrics["stage_seconds_per_clip"]
    assert set(busy) == set(per_clip) and "decode-source" in busy
    for stage, fraction in busy.items():
        assert 0 <= fraction <= 1
        seconds = per_clip[stage] * metrics["clips_processed"]
        assert fraction == pytest.approx(seconds / metrics["wall_s"], abs=0.01)
    assert f"Bottleneck: **{max(busy, key=busy.get)}**" in markdown
    assert sum(busy.values()) <= 1.05
