"""SIGKILL mid-ingest, then the same command again: it completes, redoes no finished clip, repeats no key,
and no truncated shard is ever visible under OUT/shards/."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tarfile
import threading
import time
from pathlib import Path

import pytest

from tasks.manifest import read_manifest
from tasks.validate import validate_path

pytestmark = [pytest.mark.slow, pytest.mark.faults, pytest.mark.timeout(1200)]


def _env() -> dict[str, str]:
    from prefect.settings import get_current_settings

    env = dict(os.environ)
    env["PREFECT_API_URL"] = str(get_current_settings().api.url)
    return env


def _ingest_cmd(out: Path, config: Path, clips: int) -> list[str]:
    return [sys.executable, "-m", "remind_curate.cli", "ingest", "--source", f"synthetic:{clips}", "--out", str(out),
            "--config", str(config)]


class ShardWatcher(threading.Thread):
    """Opens every visible shard, again and again, while the run goes on; records any that is truncated."""

    def __init__(self, shards: Path):
        super().__init__(daemon=True)
        self.shards, self.bad, self.seen, self.stop = shards, [], set(), threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            for path in list(self.shards.glob("*")):
                try:
                    with tarfile.open(path) as tar:
                        for member in tar:
                            if len(tar.extractfile(member).read()) != member.size:
                                self.bad.append(f"{path.name}: short member {member.name}")
                    self.seen.add(path.name)
                except FileNotFoundError:
                    continue
                except (tarfile.TarError, OSError, EOFError) as exc:
                    self.bad.append(f"{path.name}: {exc}")
            time.sleep(0.05)


def _kill_when(proc: subprocess.Popen, condition, timeout: float = 600) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline and proc.poll() is None:
        if condition():
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            return
        time.sleep(0.05)
    pytest.fail(f"the kill point was never reached (exit {proc.poll()})")


@pytest.mark.parametrize("kill_point", ["mid-clips", "mid-pack"])
def test_sigkill_then_rerun(prefect_server, tmp_path, kill_point):
    out, config = tmp_path / "out", tmp_path / "config.yaml"
    config.write_text("pack:\n  max_shard_samples: 1\n")  # many small shards: more moments to be caught in
    clips = 6
    watcher = ShardWatcher(out / "shards")
    (out / "shards").mkdir(parents=True)
    watcher.start()
    proc = subprocess.Popen(_ingest_cmd(out, config, clips), env=_env(), stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    ledger = out / "cache" / "clips"
    if kill_point == "mid-clips":
        _kill_when(proc, lambda: ledger.exists() and len(list(ledger.glob("*.json"))) >= 2)
    else:
        _kill_when(proc, lambda: len(list((out / "shards").glob("*.tar"))) >= 1)
    finished_before = len(list(ledger.glob("*.json")))
    assert 0 < finished_before <= clips

    rerun = subprocess.run(_ingest_cmd(out, config, clips), env=_env(), capture_output=True, text=True,
                           timeout=900)
    watcher.stop.set()
    watcher.join()
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert not watcher.bad, watcher.bad

    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["clips_reused"] == finished_before  # no finished clip was redone
    assert metrics["clips_processed"] == clips - finished_before
    rows = read_manifest(out / "manifest.parquet")
    keys = [r.key for r in rows if r.status == "accepted"]
    assert len(keys) == len(set(keys)) and len({r.clip_id for r in rows}) == clips
    report = validate_path(out)
    assert report.ok and report.samples == len(keys), [str(p) for p in report.problems]
    assert not list((out / "shards").glob("*.part")) and not any(p.name.startswith(".") for p in (out / "shards").iterdir())
