"""Ingest on the Ray Data backend (engine/ray_data.py): the same accepted output as the local backend, a worker
killed mid-clip retried with nothing duplicated, a clip whose code raises failed alone, and no input ever lost
when the Ray execution itself dies."""
from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest

from engine.executor import UnknownStageError, run_pipeline
from engine.ray_data import needed_cpus, plan_stages
from engine.ray_worker import INPUT, READY, RECORD, TRACE, Carried, StageWorker
from engine.stage import Failed, Pipeline, ProcessingStage, Resources
from schemas.config import load_config
from tests.faults.helpers import CLIPS, CONFIG_TEXT, manifest_rows, shard_contents, uninterrupted_run

RAY_CONFIG = "ray:\n  enabled: true\n  num_cpus: 2\n"


def _markers(stage: ProcessingStage) -> Path:
    return Path(stage.run.out).parent / "markers"


class KillOnce(ProcessingStage):
    """A pass-through stage for the test: notes every attempt (pid, PREFECT_API_URL) and SIGKILLs its own Ray
    worker on the first clip it sees, once. Importable by the workers (the repo root is on their sys.path)."""

    name = "kill-once"

    def process(self, clip):
        markers = _markers(self)
        with open(markers / f"{clip.item.clip_id}.attempts", "a") as handle:
            handle.write(json.dumps({"pid": os.getpid(), "api": os.environ.get("PREFECT_API_URL")}) + "\n")
        try:
            os.close(os.open(markers / "killed", os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        except FileExistsError:
            return clip
        (markers / "victim").write_text(clip.item.clip_id)
        os.kill(os.getpid(), signal.SIGKILL)  # mid-clip: decoded, cut, windowed, motion measured


class BoomOn(ProcessingStage):
    """Raises on the clip named in markers/boom."""

    name = "boom-on"

    def process(self, clip):
        if clip.item.clip_id == (_markers(self) / "boom").read_text():
            raise ValueError("stage exploded on purpose")
        return clip


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_ray_ingest_matches_local_retries_a_killed_worker_and_fails_one_clip(prefect_server, tmp_path,
                                                                            tmp_path_factory, monkeypatch):
    from prefect.settings import get_current_settings

    import flows.ingest
    from flows.ingest import INGEST, ingest

    reference = uninterrupted_run(tmp_path_factory.getbasetemp())  # local backend, same clips and config
    clip_ids = sorted({r["clip_id"] for r in manifest_rows(reference)})
    boom = clip_ids[-1]
    markers = tmp_path / "markers"
    markers.mkdir()
    (markers / "boom").write_text(boom)
    at = [s.name for s in INGEST.stages].index("measure-motion") + 1
    stages = INGEST.stages[:at] + (KillOnce, BoomOn) + INGEST.stages[at:]
    monkeypatch.setattr(flows.ingest, "INGEST", Pipeline("ingest", stages, INGEST.on_failure, INGEST.record_id))
    config = tmp_path / "config.yaml"
    config.write_text(CONFIG_TEXT + RAY_CONFIG)
    out = tmp_path / "out"

    summary = ingest(source=f"synthetic:{CLIPS}", out=str(out), config_path=str(config))

    assert summary["clips_processed"] == CLIPS and summary["clips_reused"] == 0
    victim = (markers / "victim").read_text()
    attempts = {p.name.split(".")[0]: [json.loads(line) for line in p.read_text().splitlines()]
                for p in markers.glob("*.attempts")}
    assert len(attempts) == CLIPS and all(len(a) == 1 for c, a in attempts.items() if c != victim), attempts
    assert len(attempts[victim]) == 2 and attempts[victim][0]["pid"] != attempts[victim][1]["pid"]  # retried
    assert all(a["pid"] != os.getpid() for runs in attempts.values() for a in runs)  # ran on Ray workers
    api = str(get_current_settings().api.url)
    assert {a["api"] for runs in attempts.values() for a in runs} == {api}  # workers talk to this run's API
    metrics = json.loads((out / "metrics.json").read_text())["pipeline"]
    assert metrics["backend"] == "ray" and metrics["stages"]["kill-once"]["items"] == CLIPS
    assert metrics["stages"]["boom-on"]["failed"] == 1 and metrics["stages"]["decode-source"]["busy_s"] > 0

    # The clip that raised is failed with its error; the run went on.
    got = manifest_rows(out)
    failed = [r for r in got if r["clip_id"] == boom]
    assert [(r["status"], r["reason"]) for r in failed] == [("failed", "clip_error")], failed
    assert "ValueError: stage exploded on purpose" in failed[0]["error"]
    # Every other clip (the killed one too) has the rows, keys and member bytes of the local run, once each.
    assert [r for r in got if r["clip_id"] != boom] == [r for r in manifest_rows(reference) if r["clip_id"] != boom]
    boom_keys = {r["key"] for r in manifest_rows(reference) if r["clip_id"] == boom and r["key"]}
    assert boom_keys, "the clip made to fail must have had accepted windows"
    want = {k: v for k, v in shard_contents(reference).items() if k not in boom_keys}
    assert shard_contents(out) == want  # shard_contents fails on a key packed twice


class Boom(ProcessingStage):
    name = "boom"

    def process(self, record):
        raise ValueError("stage exploded on purpose")


class BadSetup(ProcessingStage):
    name = "bad-setup"

    def setup(self):
        raise RuntimeError("no weights here")


class KilledTwice(ProcessingStage):
    """SIGKILLs its worker on record (0, folder) twice in all (counted in the folder): with one retry per task, the
    first execution dies and the next finishes."""

    name = "killed-twice"

    def process(self, record):
        index, folder = record
        kills = Path(folder) / "kills"
        if index == 0 and len(kills.read_bytes() if kills.exists() else b"") < 2:
            with open(kills, "ab") as handle:
                handle.write(b"k")
            os.kill(os.getpid(), signal.SIGKILL)
        return index


class AlwaysKilled(ProcessingStage):
    """SIGKILLs its worker on record 0, every attempt: the execution dies once the retries are spent."""

    name = "always-killed"

    def process(self, record):
        if record == 0:
            os.kill(os.getpid(), signal.SIGKILL)
        return record


def _batch(records):
    size = len(records)
    return {RECORD: [Carried(r) for r in records], INPUT: list(range(size)), READY: [0.0] * size,
            TRACE: ["[]"] * size}


@pytest.mark.timeout(60)
def test_stage_worker_fails_records_alone_and_traces_each_batch():
    config = load_config()
    out = StageWorker(Boom, config, None)(_batch([1, Failed(2, "decode", "earlier")]))
    first, second = [box.value for box in out[RECORD]]
    assert isinstance(first, Failed) and first.reason == "clip_error" and "exploded" in first.error
    assert second.stage == "decode"  # an earlier failure passes through untouched
    traces = [json.loads(t) for t in out[TRACE]]
    assert [t[0][0] for t in traces] == ["boom", "boom"] and [t[0][5] for t in traces] == [True, False]
    assert traces[0][0][4] == 2 and traces[0][0][3] >= 0  # batch size and seconds inside process_batch
    broken = StageWorker(BadSetup, config, None)(_batch([7]))
    assert "RuntimeError: no weights here" in broken[RECORD][0].value.error


@pytest.mark.timeout(60)
def test_plan_actor_pools_for_gpu_and_model_stages_tasks_for_the_rest():
    from flows.ingest import INGEST

    config = load_config(overrides={"vlm": {"enabled": True, "model": "m", "num_gpus_per_worker": 1.0,
                                            "num_workers": 2},
                                    "ray": {"workers": {"decode-source": 3}}})
    plans = {p.stage.name: p for p in plan_stages(INGEST, config, cluster_cpus=4)}
    judge = plans["judge-events"]
    assert judge.actors and judge.workers == 2 and judge.resources.gpus == 1.0
    assert plans["detect-scene-cuts"].actors  # loads a model in setup()
    assert not plans["decode-source"].actors and plans["decode-source"].workers == 3
    assert not plans["write-samples"].actors and plans["write-samples"].workers == 2  # 4 CPUs / 2 each
    assert needed_cpus(list(plans.values())) == sum(p.workers * p.resources.cpus for p in plans.values()
                                                    if p.actors) + 2.0
    with pytest.raises(UnknownStageError, match="decode-sorce"):
        plan_stages(INGEST, load_config(overrides={"ray": {"workers": {"decode-sorce": 1}}}), 2)


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_no_input_is_lost_when_the_ray_execution_dies(monkeypatch):
    import engine.ray_data

    monkeypatch.setattr(engine.ray_data, "MAX_RETRIES", 1)  # two deaths end an execution (quick)
    monkeypatch.setattr(engine.ray_data, "MAX_EXECUTIONS", 2)
    pipeline = Pipeline("toy", (AlwaysKilled,), on_failure=lambda failed, config, run: failed)
    config = load_config(overrides={"ray": {"enabled": True, "num_cpus": 2}})
    results = list(run_pipeline(range(8), pipeline, config, None))
    done = [r for r in results if not isinstance(r, Failed)]
    lost = [r for r in results if isinstance(r, Failed)]
    assert sorted(done + [f.record for f in lost]) == list(range(8))  # every input exactly once
    assert 0 in [f.record for f in lost]
    assert all(f.transient and f.reason == "worker_lost" and f.stage == "executor" for f in lost), lost


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_a_died_execution_is_followed_by_one_over_the_inputs_left(monkeypatch, tmp_path):
    import engine.ray_data

    monkeypatch.setattr(engine.ray_data, "MAX_RETRIES", 1)
    pipeline = Pipeline("toy", (KilledTwice,), on_failure=lambda failed, config, run: failed)
    config = load_config(overrides={"ray": {"enabled": True, "num_cpus": 2}})
    results = list(run_pipeline([(i, str(tmp_path)) for i in range(8)], pipeline, config, None))
    assert (tmp_path / "kills").read_bytes() == b"kk"  # the first execution died
    assert not [r for r in results if isinstance(r, Failed)], results
    assert sorted(results) == list(range(8))  # the second took what was left: nothing lost, nothing twice
