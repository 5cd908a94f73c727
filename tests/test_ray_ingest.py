"""Ingest on Ray (one coarse Ray task per clip): the same output as a local run, and nothing lost when a worker
is killed mid-clip (Ray retries the clip; its outputs are idempotent per key)."""
from __future__ import annotations

import dataclasses
import json
import os
import signal
from pathlib import Path

import pytest

from schemas.config import load_config
from tasks.ledger import finished_rows, load_rows
from tasks.run import open_run
from tasks.sources.synthetic import synthetic_items
from tests.faults.helpers import CLIPS, CONFIG_TEXT, assert_same_output, manifest_rows, uninterrupted_run


class KillOnce:
    """A pass-through stage for the test: records every attempt (pid, PREFECT_API_URL) and SIGKILLs its own Ray
    worker the first time it sees ``clip_id``. Importable by the workers (the repo root is on their sys.path)."""

    def __init__(self, marker_dir: Path, clip_id: str):
        self.marker_dir, self.clip_id, self.driver_pid = str(marker_dir), clip_id, os.getpid()

    def fn(self, clip, config):
        marker = Path(self.marker_dir)
        with open(marker / f"{clip.item.clip_id}.attempts", "a") as handle:
            handle.write(json.dumps({"pid": os.getpid(), "api": os.environ.get("PREFECT_API_URL")}) + "\n")
        killed = marker / "killed"
        if clip.item.clip_id == self.clip_id and not killed.exists() and os.getpid() != self.driver_pid:
            killed.write_text(str(os.getpid()))
            os.kill(os.getpid(), signal.SIGKILL)  # mid-clip: decoded, cut, windowed, motion measured
        return clip


class Boom:
    def fn(self, clip, config):
        raise ValueError("stage exploded on purpose")


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_ray_ingest_matches_local_and_retries_a_killed_worker(prefect_server, tmp_path, tmp_path_factory,
                                                              monkeypatch):
    from prefect.settings import get_current_settings

    import flows.ingest
    from flows.ingest import CLIP_STAGES, ingest

    reference = uninterrupted_run(tmp_path_factory.getbasetemp())  # local run of the same clips and config
    victim = next(r["clip_id"] for r in manifest_rows(reference) if r["status"] == "accepted")
    markers = tmp_path / "markers"
    markers.mkdir()
    stages = CLIP_STAGES[:4] + (KillOnce(markers, victim),) + CLIP_STAGES[4:]
    monkeypatch.setattr(flows.ingest, "CLIP_STAGES", stages)
    config = tmp_path / "config.yaml"
    config.write_text(CONFIG_TEXT + "ray:\n  num_cpus: 2\n  max_in_flight: 2\n")
    out = tmp_path / "out"

    summary = ingest(source=f"synthetic:{CLIPS}", out=str(out), config_path=str(config), ray_address="local")

    assert summary["clips_processed"] == CLIPS and summary["clips_reused"] == 0
    attempts = {p.name.split(".")[0]: [json.loads(line) for line in p.read_text().splitlines()]
                for p in markers.glob("*.attempts")}
    assert (markers / "killed").exists(), "the victim's worker was never killed"
    assert len(attempts) == CLIPS and all(len(a) == 1 for c, a in attempts.items() if c != victim), attempts
    assert len(attempts[victim]) == 2 and attempts[victim][0]["pid"] != attempts[victim][1]["pid"]
    assert all(a["pid"] != os.getpid() for runs in attempts.values() for a in runs)  # ran on Ray workers
    api = str(get_current_settings().api.url)
    assert {a["api"] for runs in attempts.values() for a in runs} == {api}  # workers talk to this run's API
    # The retried clip is accepted and committed once, with outputs that verify.
    entry = json.loads((out / "cache" / "clips" / f"{victim}.json").read_text())
    assert [r["status"] for r in entry["rows"]].count("accepted") >= 1 and entry["checksums"]
    assert all(r["status"] != "failed" for r in entry["rows"]), entry["rows"]
    # Same keys, rows (modulo order, run id and timing) and shard member bytes as the local run.
    assert_same_output(out, reference)


@pytest.mark.timeout(120)
def test_a_clip_that_raises_becomes_failed_rows(tmp_path):
    from tasks.ray_executor import curate_on_worker

    config = load_config()
    run = open_run(tmp_path / "out", config)
    try:
        item = synthetic_items(1, config.synthetic)[0]
        result = curate_on_worker(item, (Boom(),), config, dataclasses.replace(run, _lock=None))
        assert [(r.status, r.reason) for r in result.rows] == [("failed", "clip_error")]
        assert "ValueError: stage exploded on purpose" in result.rows[0].error
        rows, why = finished_rows(item, run, {})  # committed: the manifest shows it; a rerun does not redo it
        assert rows is not None and rows[0].reason == "clip_error", why
    finally:
        run.release()


@pytest.mark.timeout(120)
def test_a_clip_lost_with_its_workers_is_in_the_manifest_and_redone(tmp_path):
    from tasks.ray_executor import record_lost

    config = load_config()
    run = open_run(tmp_path / "out", config)
    try:
        item = synthetic_items(1, config.synthetic)[0]
        result = record_lost(item, run, "WorkerCrashedError: the worker died unexpectedly")
        assert [(r.status, r.reason) for r in result.rows] == [("failed", "worker_lost")]
        assert [(r.status, r.reason) for r in load_rows([item], run)] == [("failed", "worker_lost")]
        rows, why = finished_rows(item, run, {})
        assert rows is None, "a lost clip must be redone by the next run"
    finally:
        run.release()


@pytest.mark.timeout(60)
def test_ray_task_resources():
    from tasks.ray_executor import task_resources

    assert task_resources(load_config()) == {"num_cpus": 1, "num_gpus": 0.0}
    gpu = load_config(overrides={"vlm": {"enabled": True, "model": "m", "num_gpus_per_worker": 1.0},
                                 "geometry": {"backend": "da3", "num_gpus_per_worker": 0.5}})
    assert task_resources(gpu) == {"num_cpus": 1, "num_gpus": 1.0}
    da3 = load_config(overrides={"geometry": {"backend": "da3", "num_gpus_per_worker": 0.5}})
    assert task_resources(da3) == {"num_cpus": 1, "num_gpus": 0.5}
