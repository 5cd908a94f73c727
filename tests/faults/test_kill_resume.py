"""SIGKILL mid-ingest, then the same command again: it completes, redoes no finished clip, repeats no key,
no truncated shard is ever visible under OUT/shards/, and the result is what an uninterrupted run produces
(same manifest rows, same keys, same member bytes; meta.json differs only in run_id)."""
from __future__ import annotations

import json
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

import pytest

from tasks.publish.manifest import read_manifest
from tasks.shards.validate import validate_path
from tests.faults.helpers import CLIPS, ShardWatcher, assert_same_output, backend_config, kill_when, prefect_env, \
    shard_contents, strict_tar_members

pytestmark = [pytest.mark.slow, pytest.mark.faults, pytest.mark.timeout(1200)]


def _ingest_cmd(out: Path, config: Path, clips: int) -> list[str]:
    return [sys.executable, "-m", "remind_curate.cli", "ingest", "--source", f"synthetic:{clips}", "--out", str(out),
            "--config", str(config)]


def _settle(ledger: Path, quiet_s: float = 2.0, limit_s: float = 30.0) -> None:
    """Wait until no ledger entry has appeared for ``quiet_s``."""
    deadline, count, since = time.time() + limit_s, -1, time.time()
    while time.time() < deadline:
        now = len(list(ledger.glob("*.json")))
        if now != count:
            count, since = now, time.time()
        elif time.time() - since >= quiet_s:
            return
        time.sleep(0.1)


# mid-clips: after two clips committed; mid-pack: after the first shard; after-last-shard: every shard is
# published, the run is removing staged copies / writing the manifest, previews or report. On the Ray backend
# only mid-clips: packing and what follows run on the driver alike for both backends.
@pytest.mark.parametrize("kill_point,backend", [("mid-clips", "local"), ("mid-pack", "local"),
                                                ("after-last-shard", "local"), ("mid-clips", "ray")])
def test_sigkill_then_rerun(prefect_server, reference_out, tmp_path, kill_point, backend):
    out, config = tmp_path / "out", tmp_path / "config.yaml"
    config.write_text(backend_config(backend))  # max_shard_samples: 1, many small shards: more moments to be caught in
    clips = CLIPS
    accepted = len(shard_contents(reference_out))
    watcher = ShardWatcher(out / "shards")
    (out / "shards").mkdir(parents=True)
    watcher.start()
    proc = subprocess.Popen(_ingest_cmd(out, config, clips), env=prefect_env(), stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    ledger = out / "cache" / "clips"
    if kill_point == "mid-clips":
        kill_when(proc, lambda: ledger.exists() and len(list(ledger.glob("*.json"))) >= 2)
    elif kill_point == "mid-pack":
        kill_when(proc, lambda: len(list((out / "shards").glob("*.tar"))) >= 1)
    else:
        kill_when(proc, lambda: len(list((out / "shards").glob("*.tar"))) >= accepted)
    if backend == "ray":  # the killed driver's Ray workers die with it (Ray's reaper), a moment later
        _settle(ledger)
    finished_before = len(list(ledger.glob("*.json")))
    assert 0 < finished_before <= clips

    rerun = subprocess.run(_ingest_cmd(out, config, clips), env=prefect_env(), capture_output=True, text=True,
                           timeout=900)
    watcher.stop.set()
    watcher.join()
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert not watcher.bad, watcher.bad  # never a shard without its end-of-archive blocks, never one rewritten
    assert watcher.reads > 0 and watcher.seen, "the watcher never saw a shard while the runs went on"

    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["clips_reused"] == finished_before  # no finished clip was redone
    assert metrics["clips_processed"] == clips - finished_before
    rows = read_manifest(out / "manifest.parquet")
    keys = [r.key for r in rows if r.status == "accepted"]
    assert len(keys) == len(set(keys)) and len({r.clip_id for r in rows}) == clips
    report = validate_path(out)
    assert report.ok and report.samples == len(keys), [str(p) for p in report.problems]
    assert not list((out / "shards").glob("*.part")) and not any(p.name.startswith(".") for p in (out / "shards").iterdir())
    assert_same_output(out, reference_out)  # nothing lost, nothing doubled, byte for byte

    # Every shard the watcher saw mid-run already held exactly the members it holds now, and those are the
    # members of the keys the manifest puts in it (each key with the members the reference run gave it).
    reference = shard_contents(reference_out)
    by_shard: dict[str, list[str]] = defaultdict(list)
    for row in rows:
        if row.status == "accepted":
            by_shard[row.shard].append(row.key)
    for name, members in watcher.seen.items():
        assert strict_tar_members((out / "shards" / name).read_bytes()) == members, name
        expected = sorted(f"{key}.{ext}" for key in by_shard[name] for ext in reference[key])
        assert sorted(members) == expected, (name, members, expected)
