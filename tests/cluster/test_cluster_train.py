"""Training on a Ray cluster of three nodes on this machine (tests/cluster/conftest.py), shards and checkpoints in a
bucket (moto's S3 server).

- ``remind-curate train --shards s3://... --out s3://... --ray-address ...``: two Ray Train workers, one on each
  worker node (the head has no CPU; ``ray.placement_strategy: STRICT_SPREAD``); checkpoints, logs and summary land in
  the bucket; the driver's log is the workers' (read back from the last checkpoint, never from a worker's disk).
- A worker node killed without grace mid-run (a fresh node added at the same moment): Ray Train restarts the worker
  group from the last checkpoint in the bucket and the run finishes; the metrics log is one continuous curve whose
  resumed part starts at the checkpoint's step + 1.
"""
from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from tests.engine.test_s3_out import _objects
from tests.training.shards import make_sample, write_shards

TINY = Path(__file__).resolve().parents[2] / "configs" / "train-tiny.yaml"
RUN = "cluster-train"


@pytest.fixture(scope="module")
def local_shards(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("cluster-train-data")
    samples = [make_sample(0, True), make_sample(1, False, source="local", event_group="light"),
               make_sample(2, True), make_sample(3, False, source="local", event_group="light")]
    return write_shards(root / "shards", samples)


def _upload(s3, shards: Path) -> str:
    bucket, client, _ = s3
    for path in sorted(shards.glob("*.tar")):
        client.upload_file(str(path), bucket, f"data/shards/{path.name}")
    return f"s3://{bucket}/data/shards"


def _config(tmp_path: Path, max_steps: int) -> Path:
    config = yaml.safe_load(TINY.read_text())
    config.update(max_steps=max_steps, log_every=1, checkpoint_every=2, keep_checkpoints=2, run_name=RUN)
    config["data"].update(latents="on_the_fly", decode_cpus=0.5)  # no local cache: the VAE runs in the loop
    config["text"]["encoder"] = "none"
    config["ray"] = {"num_workers": 2, "cpus_per_worker": 1.0, "torch_threads": 1,
                     "placement_strategy": "STRICT_SPREAD", "max_failures": 3}
    path = tmp_path / "train.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def _cli_train(shards: str, out: str, config: Path, address: str) -> subprocess.Popen:
    """The driver as its own process (Cluster.add_node must run in this process's main thread)."""
    cmd = [sys.executable, "-m", "remind_curate.cli", "train", "--shards", shards, "--out", out,
           "--config", str(config), "--ray-address", address]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _read(s3, key: str) -> bytes:
    bucket, client, _ = s3
    return client.get_object(Bucket=bucket, Key=key)["Body"].read()


def _jsonl(s3, key: str) -> list[dict]:
    return [json.loads(line) for line in _read(s3, key).decode().splitlines() if line.strip()]


def _checkpoint_steps(s3, prefix: str) -> list[int]:
    bucket, client, _ = s3
    keys = [k for k in _objects(client, bucket, prefix) if k.endswith("/state.json") and "/checkpoint_" in k]
    return sorted(json.loads(_read(s3, prefix + k))["step"] for k in keys)


def _finish(driver: subprocess.Popen, s3, prefix: str, tmp_path: Path, timeout: float) -> dict:
    stdout, stderr = driver.communicate(timeout=timeout)
    (tmp_path / "driver.out").write_bytes(stdout + b"\n" + stderr)
    assert driver.returncode == 0, stderr.decode(errors="replace")[-4000:]
    return json.loads(_read(s3, f"{prefix}summary.json"))


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_train_on_two_nodes_from_and_into_a_bucket(s3, lean_head_cluster, local_shards, tmp_path):
    started = time.time()
    bucket = s3[0]
    driver = _cli_train(_upload(s3, local_shards), f"s3://{bucket}/run", _config(tmp_path, 4), lean_head_cluster.address)
    summary = _finish(driver, s3, "run/", tmp_path, 240)
    print(f"trained in {time.time() - started:.1f} s")

    workers = {node.node_id for node in lean_head_cluster.workers}
    assert len(set(summary["nodes"])) == 2 and set(summary["nodes"]) == workers, summary["nodes"]
    assert summary["checkpoint"].startswith(f"s3://{bucket}/run/checkpoints/{RUN}/checkpoint_")
    assert _checkpoint_steps(s3, "run/checkpoints/") == [2, 4]  # keep_checkpoints
    records = _jsonl(s3, "run/metrics.jsonl")  # the workers' log, written by the driver from the checkpoint
    assert [r["step"] for r in records] == [1, 2, 3, 4] and {r["resumed_from"] for r in records} == {0}
    assert summary["last_step"] == 4
    assert summary["heatmaps"] == [f"s3://{bucket}/run/heatmaps/kv_importance_000004.png"]
    assert _read(s3, "run/heatmaps/kv_importance_000004.png")[:8] == b"\x89PNG\r\n\x1a\n"
    assert [e["resumed"] for e in _jsonl(s3, "run/events.jsonl")] == [False]


@pytest.mark.slow
@pytest.mark.timeout(420)
def test_losing_a_worker_node_resumes_from_the_bucket_checkpoint(s3, lean_head_cluster, local_shards, tmp_path):
    max_steps = 8
    driver = _cli_train(_upload(s3, local_shards), f"s3://{s3[0]}/lossy", _config(tmp_path, max_steps),
                        lean_head_cluster.address)
    deadline = time.time() + 240
    while not _checkpoint_steps(s3, "lossy/checkpoints/") and driver.poll() is None and time.time() < deadline:
        time.sleep(0.2)
    before = _checkpoint_steps(s3, "lossy/checkpoints/")
    assert driver.poll() is None and before, "no checkpoint in the bucket while the driver ran"
    lost = lean_head_cluster.workers[0]
    added = lean_head_cluster.add_worker("w3")
    lean_head_cluster.remove(lost)  # SIGKILL: raylet, object store, the Train worker on it
    lost_at = time.time()
    summary = _finish(driver, s3, "lossy/", tmp_path, 330)
    print(f"finished {time.time() - lost_at:.1f} s after the node loss; checkpoints then: {before}")

    starts = _jsonl(s3, "lossy/events.jsonl")
    assert [s["resumed"] for s in starts] == [False, True], starts
    resumed = starts[-1]["step"]
    assert resumed >= before[-1] and resumed % 2 == 0 and summary["resumed_from_step"] == resumed
    assert lost.node_id not in starts[-1]["nodes"] and added.node_id in starts[-1]["nodes"], starts
    records = _jsonl(s3, "lossy/metrics.jsonl")
    assert [r["step"] for r in records] == list(range(1, max_steps + 1))  # one continuous curve
    after = [r for r in records if r["resumed_from"] == resumed]
    assert after and after[0]["step"] == resumed + 1 and after[-1]["step"] == max_steps
    assert all(r["resumed_from"] == 0 for r in records[:resumed])
    assert _checkpoint_steps(s3, "lossy/checkpoints/")[-1] == max_steps == summary["last_step"]


@pytest.mark.timeout(120)
def test_bucket_shards_are_checked_before_any_work(s3, local_shards, tmp_path, capsys):
    """A wrong prefix, or a config that needs a cache beside local shards, is one line before Ray starts."""
    from tests.test_cli_errors import _main_error

    url, out = _upload(s3, local_shards), tmp_path / "run"
    line = _main_error(capsys, ["train", "--shards", url + "-nope", "--out", str(out)])
    assert "no *.tar shards in" in line, line
    line = _main_error(capsys, ["train", "--shards", url, "--config", str(TINY), "--out", str(out)])
    assert "set data.latents: on_the_fly" in line, line
    assert not out.exists()
