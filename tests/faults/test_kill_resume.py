"""SIGKILL mid-ingest, then the same command again: it completes, redoes no finished clip, repeats no key,
no truncated shard is ever visible under OUT/shards/, and the result is what an uninterrupted run produces
(same manifest rows, same keys, same member bytes; meta.json differs only in run_id)."""
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
from tests.faults.helpers import CLIPS, CONFIG_TEXT, assert_same_output, shard_contents

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


# mid-clips: after two clips committed; mid-pack: after the first shard; after-last-shard: every shard is
# published, the run is removing staged copies / writing the manifest, previews or report.
@pytest.mark.parametrize("kill_point", ["mid-clips", "mid-pack", "after-last-shard"])
def test_sigkill_then_rerun(prefect_server, reference_out, tmp_path, kill_point):
    out, config = tmp_path / "out", tmp_path / "config.yaml"
    config.write_text(CONFIG_TEXT)  # max_shard_samples: 1, many small shards: more moments to be caught in
    clips = CLIPS
    accepted = len(shard_contents(reference_out))
    watcher = ShardWatcher(out / "shards")
    (out / "shards").mkdir(parents=True)
    watcher.start()
    proc = subprocess.Popen(_ingest_cmd(out, config, clips), env=_env(), stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    ledger = out / "cache" / "clips"
    if kill_point == "mid-clips":
        _kill_when(proc, lambda: ledger.exists() and len(list(ledger.glob("*.json"))) >= 2)
    elif kill_point == "mid-pack":
        _kill_when(proc, lambda: len(list((out / "shards").glob("*.tar"))) >= 1)
    else:
        _kill_when(proc, lambda: len(list((out / "shards").glob("*.tar"))) >= accepted)
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
    assert_same_output(out, reference_out)  # nothing lost, nothing doubled, byte for byte
