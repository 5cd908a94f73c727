"""Ingest on a Ray cluster of three nodes on this machine (tests/cluster/conftest.py) with OUT on S3 (moto's server).

- Undisturbed: the workers write only under their own node's scratch root and reach the driver only through the
  bucket; the driver packs what they committed there; metrics.json says which node ran how many tasks.
- A worker node killed without grace mid-run (a fresh node added at the same moment): the run finishes with the
  keys of the undisturbed run, every shard whole, every key once, every input in the manifest; the new node ran
  tasks.
- The driver killed mid-run: the rerun takes the dead driver's lease and resumes from the bucket's ledger, redoing
  none of the clips committed before the kill.
"""
from __future__ import annotations

import io
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.cluster.conftest import driver_workdir
from tests.engine.test_s3_out import CLIPS, _check_bucket_output, _objects
from tests.faults.helpers import kill_when, prefect_env

SOURCE = f"synthetic:{CLIPS}"
_reference: dict[str, list[str]] = {}  # accepted keys of the undisturbed cluster run (computed once per session)


def _metrics(s3, prefix: str) -> dict:
    bucket, client, _ = s3
    return json.loads(client.get_object(Bucket=bucket, Key=f"{prefix}metrics.json")["Body"].read())


def _rows(s3, prefix: str) -> list:
    from tasks.publish.manifest import read_manifest

    bucket, _, fs = s3
    fs.invalidate_cache()
    with fs.open(f"{bucket}/{prefix}manifest.parquet", "rb") as handle:
        return read_manifest(io.BytesIO(handle.read()))


def _committed(s3, prefix: str) -> list[str]:
    bucket, client, _ = s3
    return sorted(k for k in _objects(client, bucket, prefix) if k.startswith("cache/clips/"))


def _undisturbed(s3, nodes, config, tmp_path) -> list[str]:
    if "keys" not in _reference:
        from flows.ingest import ingest

        bucket = s3[0]
        ingest(source=SOURCE, out=f"s3://{bucket}/reference", config_path=str(config), ray_address=nodes.address)
        _reference["keys"] = _check_bucket_output(s3, "reference/", tmp_path / "reference")
    return _reference["keys"]


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_ingest_on_three_nodes_crosses_only_through_the_bucket(prefect_server, s3, cluster, cluster_config,
                                                               tmp_path):
    keys = _undisturbed(s3, cluster, cluster_config, tmp_path)

    assert keys
    nodes = _metrics(s3, "reference/")["pipeline"]["nodes"]
    workers = {node.node_id for node in cluster.workers}
    assert set(nodes) <= set(cluster.scratch) and set(nodes) & workers, nodes  # worker nodes ran tasks
    # The workers wrote their clips' window caches under their own nodes' scratch roots and committed them to the
    # bucket; the driver's working folder never held one (it pulls ledger entries and samples, not windows).
    driver = next(driver_workdir().iterdir())
    assert not any((driver / "cache" / "windows").iterdir())
    assert all((cluster.scratch[node] / "work").is_dir() for node in nodes)
    accepted = [r for r in _rows(s3, "reference/") if r.status == "accepted"]
    windows = [k for k in _objects(s3[1], s3[0], "reference/") if k.startswith("cache/windows/")
               and k.endswith("/clean.mp4")]
    assert len(windows) >= len(accepted) > 0


def _cli_ingest(url: str, nodes, config, log: Path) -> subprocess.Popen:
    """The driver as its own process (Cluster.add_node must run in this process's main thread). Its stderr goes to
    ``log``, a file: a pipe nobody reads while the test waits fills up and blocks the driver."""
    cmd = [sys.executable, "-m", "remind_curate.cli", "ingest", "--source", SOURCE, "--out", url,
           "--config", str(config), "--ray-address", nodes.address]
    with open(log, "wb") as stderr:
        return subprocess.Popen(cmd, env=prefect_env(), stdout=subprocess.DEVNULL, stderr=stderr)


def _tail(log: Path) -> str:
    return log.read_bytes().decode(errors="replace")[-3000:]


@pytest.mark.slow
@pytest.mark.timeout(480)
def test_losing_a_worker_node_mid_run_loses_nothing(prefect_server, s3, lean_head_cluster, cluster_config, tmp_path):
    cluster = lean_head_cluster  # on a head with CPUs the run could finish without the added node (seen under load)
    reference = _undisturbed(s3, cluster, cluster_config, tmp_path)
    log = tmp_path / "driver.err"
    driver = _cli_ingest(f"s3://{s3[0]}/lossy", cluster, cluster_config, log)
    deadline = time.time() + 300
    while not _committed(s3, "lossy/") and driver.poll() is None and time.time() < deadline:
        time.sleep(0.2)
    if driver.poll() is not None or not _committed(s3, "lossy/"):
        driver.kill()
        pytest.fail(f"no clip committed while the driver ran (exit {driver.wait()}): {_tail(log)}")
    busy = [n for n in cluster.workers if (cluster.scratch[n.node_id] / "work").is_dir()] or cluster.workers
    added = cluster.add_worker("w3")
    cluster.remove(busy[0])  # SIGKILL: raylet, object store, workers; its scratch root goes with it
    lost_at = time.time()
    try:
        driver.wait(timeout=360)
    except subprocess.TimeoutExpired:
        driver.kill()
        pytest.fail(f"the driver had not finished 360 s after the node loss: {_tail(log)}")

    assert driver.returncode == 0, _tail(log)
    print(f"finished {time.time() - lost_at:.1f} s after the node loss")
    rows = _rows(s3, "lossy/")
    assert not [r for r in rows if r.status == "failed"], [(r.clip_id, r.reason, r.error) for r in rows]
    assert _check_bucket_output(s3, "lossy/", tmp_path / "lossy") == reference  # whole shards, each key once
    nodes = _metrics(s3, "lossy/")["pipeline"]["nodes"]
    assert added.node_id in nodes, nodes  # the node added mid-run took work


@pytest.mark.slow
@pytest.mark.timeout(480)
def test_a_killed_driver_resumes_from_the_bucket(prefect_server, s3, cluster, cluster_config, tmp_path):
    from flows.ingest import ingest

    reference = _undisturbed(s3, cluster, cluster_config, tmp_path)
    url = f"s3://{s3[0]}/resumed"
    proc = _cli_ingest(url, cluster, cluster_config, tmp_path / "driver.err")
    kill_when(proc, lambda: bool(_committed(s3, "resumed/")), timeout=300)
    done = _committed(s3, "resumed/")
    assert 0 < len(done) < CLIPS

    started = time.time()
    summary = ingest(source=SOURCE, out=url, config_path=str(cluster_config), ray_address=cluster.address)
    print(f"the rerun took {time.time() - started:.1f} s")  # with Ray Data's 180 s request expiry it hung past 480 s

    assert summary["clips_reused"] >= len(done)  # what the killed driver's workers committed is not redone
    assert summary["clips_processed"] == CLIPS - summary["clips_reused"]
    assert _check_bucket_output(s3, "resumed/", tmp_path / "resumed") == reference
    assert not _objects(s3[1], s3[0], "resumed/").get(".lease.json")  # released at the end
