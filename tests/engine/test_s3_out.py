"""OUT on object storage (engine/store_s3.py) against a real S3-compatible server: moto's server mode, started on
127.0.0.1 by the tests (as the s3fs project tests itself). Endpoint and credentials reach the run only through the
standard AWS environment variables.

- an ingest to s3://bucket/prefix publishes complete shards that a third-party reader (s3fs + tarfile) reads back
  and the project's validator accepts; ledger, window cache, manifest and report live in the bucket; a rerun from
  an empty working folder (another machine) resumes from the bucket and reprocesses nothing; regenerate reads
  its parent from the bucket and publishes there;
- a misconfiguration (bucket missing, no credentials, endpoint unreachable, s3fs missing) is one line, before work;
- SIGKILL while a shard's multipart upload is in flight leaves no partial object visible, and a rerun completes
  with every key exactly once.
"""
from __future__ import annotations

import gzip
import io
import json
import os
import socket
import subprocess
import sys
import tarfile
import time
import urllib.request
from pathlib import Path

import pytest

from tests.faults.helpers import kill_when, prefect_env, strict_tar_members

SECRET = "s3cr3t-value-that-must-never-leak"
CONFIG_TEXT = "pack:\n  max_shard_samples: 2\nencode:\n  preset: ultrafast\n"
CLIPS = 3


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def moto_endpoint():
    """moto's S3 server in its own process (small multipart parts allowed, so a 5 MiB shard has many parts)."""
    port = _free_port()
    env = {**os.environ, "S3_UPLOAD_PART_MIN_SIZE": "256"}
    proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 30
    while True:
        try:
            urllib.request.urlopen(f"{url}/moto-api/", timeout=1)
            break
        except OSError:
            if time.time() > deadline or proc.poll() is not None:
                proc.kill()
                pytest.fail("moto server did not start")
            time.sleep(0.1)
    yield url
    proc.terminate()
    proc.wait(timeout=10)


@pytest.fixture
def s3(moto_endpoint, monkeypatch, tmp_path, request):
    """The AWS environment of one test, a fresh bucket, and boto3/s3fs clients of it."""
    import boto3
    import s3fs

    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL_S3", "REMIND_CURATE_S3_PART_BYTES"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "remindtestkey")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("REMIND_CURATE_WORKDIR", str(tmp_path / "work"))
    bucket = "remind-" + request.node.name.lower().replace("_", "-")[:40]
    client = boto3.client("s3")
    client.create_bucket(Bucket=bucket)
    return bucket, client, s3fs.S3FileSystem(skip_instance_cache=True)


def _objects(client, bucket: str, prefix: str) -> dict[str, dict]:
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    return {o["Key"][len(prefix):]: o for page in pages for o in page.get("Contents", [])}


def _ledger(client, bucket: str, prefix: str) -> set[str]:
    """The clip ids the bucket's ledger holds: folded into gzip JSON parts (cache/ledger/) or one object each."""
    clips = set()
    for key in _objects(client, bucket, prefix):
        if key.startswith("cache/ledger/part-"):
            body = client.get_object(Bucket=bucket, Key=prefix + key)["Body"].read()
            clips |= set(json.loads(gzip.decompress(body)))
        elif key.startswith("cache/clips/"):
            clips.add(key.removeprefix("cache/clips/").removesuffix(".json"))
    return clips


def _shards(client, bucket: str, prefix: str) -> dict[str, str]:
    """shard name -> ETag of every visible shard object."""
    return {k.split("/")[-1]: o["ETag"] for k, o in _objects(client, bucket, prefix).items()
            if k.startswith("shards/")}


def _check_bucket_output(s3, prefix: str, tmp: Path) -> list[str]:
    """Every visible shard is a complete tar that s3fs+tarfile and the project's validator read; the manifest
    in the bucket names each accepted key once, in the shard that holds it. Returns the keys."""
    from tasks.publish.manifest import read_manifest
    from tasks.shards.validate import validate_path

    bucket, client, fs = s3
    objects = _objects(client, bucket, prefix)
    assert not [k for k in objects if k.startswith(("cache/samples/", ".tmp")) or ".part" in k], sorted(objects)
    holder: dict[str, str] = {}
    local = tmp / "shards"
    local.mkdir(parents=True, exist_ok=True)
    for name in _shards(client, bucket, prefix):
        with fs.open(f"{bucket}/{prefix}shards/{name}", "rb") as handle:  # third-party reader over S3
            data = handle.read()
        names = strict_tar_members(data)  # complete: every member whole, end-of-archive marker present
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tar:
            assert [m.name for m in tar] == names
        for key in {n.partition(".")[0] for n in names}:
            assert key not in holder, f"{key} in {holder.get(key)} and {name}"
            holder[key] = name
        (local / name).write_bytes(data)
    report = validate_path(tmp)
    assert report.ok and report.samples == len(holder), [str(p) for p in report.problems]
    fs.invalidate_cache()
    with fs.open(f"{bucket}/{prefix}manifest.parquet", "rb") as handle:
        rows = read_manifest(io.BytesIO(handle.read()))
    accepted = {r.key: r.shard for r in rows if r.status == "accepted"}
    assert accepted == holder
    assert len({r.clip_id for r in rows}) == CLIPS
    return sorted(holder)


def _no_secret(s3, prefix: str, *folders: Path) -> None:
    bucket, client, _ = s3
    for key in _objects(client, bucket, prefix):
        assert SECRET.encode() not in client.get_object(Bucket=bucket, Key=prefix + key)["Body"].read(), key
    for folder in folders:
        for path in folder.rglob("*"):
            if path.is_file():
                assert SECRET.encode() not in path.read_bytes(), path


@pytest.mark.slow
@pytest.mark.timeout(400)
def test_ingest_to_s3_reads_back_and_resumes_elsewhere(prefect_server, s3, tmp_path, monkeypatch):
    from flows.ingest import ingest

    bucket, client, fs = s3
    config = tmp_path / "config.yaml"
    config.write_text(CONFIG_TEXT)
    url = f"s3://{bucket}/runs/a"
    summary = ingest(source=f"synthetic:{CLIPS}", out=url, config_path=str(config))
    assert summary["out"] == url and summary["clips_processed"] == CLIPS

    objects = _objects(client, bucket, "runs/a/")
    for name in ("run.json", "config.yaml", "manifest.parquet", "report.md", "metrics.json"):
        assert name in objects, sorted(objects)
    assert len(_ledger(client, bucket, "runs/a/")) == CLIPS
    assert not [k for k in objects if k.startswith("cache/clips/")]  # folded into the compacted ledger
    indexes = [k for k in objects if k.startswith("cache/shard-index/")]
    assert indexes == [f"cache/shard-index/{name}.json" for name in sorted(_shards(client, bucket, "runs/a/"))]
    assert any(k.startswith("cache/windows/") and k.endswith("/window.json") for k in objects)  # regenerate's
    assert any(k.startswith("previews/") for k in objects)
    keys = _check_bucket_output(s3, "runs/a/", tmp_path / "read1")
    assert len(keys) == summary["status"]["accepted"] > 0
    before = _shards(client, bucket, "runs/a/")
    assert set(before) == set(summary["shards"])

    # Another machine: an empty working folder. Everything comes from the bucket; no clip is redone.
    monkeypatch.setenv("REMIND_CURATE_WORKDIR", str(tmp_path / "elsewhere"))
    again = ingest(source=f"synthetic:{CLIPS}", out=url, config_path=str(config))
    assert (again["clips_processed"], again["clips_reused"]) == (0, CLIPS)
    assert _shards(client, bucket, "runs/a/") == before  # no shard added or rewritten
    assert _check_bucket_output(s3, "runs/a/", tmp_path / "read2") == keys
    metrics = json.loads(fs.cat(f"{bucket}/runs/a/metrics.json"))
    assert metrics["clips_reused"] == CLIPS and metrics["out"] == url

    # regenerate from the bucket into the bucket: the parent's window cache is pulled, the new run published.
    from flows.regenerate import regenerate

    regenerated = regenerate(source_out=url, out=f"s3://{bucket}/runs/b")
    assert regenerated["clips_processed"] == CLIPS and regenerated["status"]["accepted"] == len(keys)
    assert _check_bucket_output(s3, "runs/b/", tmp_path / "read3") == keys
    _no_secret(s3, "runs/", tmp_path / "work", tmp_path / "elsewhere")


@pytest.mark.timeout(120)
def test_misconfigured_s3_out_is_one_line_before_any_work(s3, tmp_path, monkeypatch, capsys):
    from remind_curate.cli import main

    bucket, client, _ = s3

    def error(out: str, command: tuple[str, ...] = ("ingest", "--source", "synthetic:1")) -> str:
        rc = main([*command, "--out", out])
        err = capsys.readouterr().err
        assert rc == 2 and err.count("\n") == 1 and err.startswith(f"remind-curate {command[0]}: error: "), err
        assert SECRET not in err
        return err

    assert "bucket no-such-bucket-here does not exist" in error("s3://no-such-bucket-here/run")
    assert "gs:// is not supported" in error(f"gs://{bucket}/run")
    assert "not in the URL" in error(f"s3://remindtestkey:{SECRET}@{bucket}/run")
    with monkeypatch.context() as m:
        m.setitem(sys.modules, "s3fs", None)  # the package is not installed
        assert "needs the s3fs package" in error(f"s3://{bucket}/run")
    with monkeypatch.context() as m:
        m.delenv("AWS_ACCESS_KEY_ID")
        m.delenv("AWS_SECRET_ACCESS_KEY")
        assert "no S3 credentials" in error(f"s3://{bucket}/run")
    with monkeypatch.context() as m:
        m.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{_free_port()}")  # nothing listens there
        assert "cannot reach the S3 endpoint" in error(f"s3://{bucket}/run")
    with monkeypatch.context() as m:
        m.setenv("REMIND_CURATE_S3_LEASE_S", "one minute")
        assert "REMIND_CURATE_S3_LEASE_S must be a positive number of seconds" in error(f"s3://{bucket}/run")
        from remind_curate.preflight import UsageError, output

        with pytest.raises(UsageError, match="LEASE_S must be"):  # said by the checks, before a flow starts
            output(f"s3://{bucket}/run")
    assert "is not a remind-curate output" in error(f"s3://{bucket}/b", ("regenerate", "--from", f"s3://{bucket}/a"))
    assert _objects(client, bucket, "") == {}  # nothing written, no run started
    assert not (tmp_path / "work").exists()


def _ingest_cmd(url: str, config: Path) -> list[str]:
    return [sys.executable, "-m", "remind_curate.cli", "ingest", "--source", f"synthetic:{CLIPS}", "--out", url,
            "--config", str(config)]


@pytest.mark.slow
@pytest.mark.timeout(400)
def test_sigkill_mid_shard_upload_leaves_nothing_partial(prefect_server, s3, tmp_path, monkeypatch):
    bucket, client, fs = s3
    config = tmp_path / "config.yaml"
    config.write_text(CONFIG_TEXT.replace("max_shard_samples: 2", "max_shard_samples: 1"))  # 3 shards
    url, prefix = f"s3://{bucket}/runs/k", "runs/k/"
    env = {**prefect_env(), "REMIND_CURATE_S3_PART_BYTES": str(64 * 1024)}  # a ~5 MiB shard: ~80 parts
    in_flight: dict[str, str] = {}

    def uploading_a_shard() -> bool:
        if not _shards(client, bucket, prefix):
            return False  # wait for a published shard, so that one is visible when the next is cut short
        for upload in client.list_multipart_uploads(Bucket=bucket, Prefix=prefix + "shards/").get("Uploads", []):
            parts = client.list_parts(Bucket=bucket, Key=upload["Key"], UploadId=upload["UploadId"])
            if len(parts.get("Parts", [])) >= 2:  # part of the shard is on the server, not all of it
                in_flight["key"] = upload["Key"]
                return True
        return False

    proc = subprocess.Popen(_ingest_cmd(url, config), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    kill_when(proc, uploading_a_shard, timeout=300)
    assert in_flight["key"].removeprefix(prefix) not in _objects(client, bucket, prefix)  # not visible
    visible = _shards(client, bucket, prefix)
    assert visible
    for name in visible:  # whatever is visible is whole
        strict_tar_members(fs.cat(f"{bucket}/{prefix}shards/{name}"))
    assert len(_ledger(client, bucket, prefix)) == CLIPS  # packing starts after every clip is in the bucket's ledger

    from flows.ingest import ingest

    # The same command on another machine: the samples staged but not packed come from the bucket.
    monkeypatch.setenv("REMIND_CURATE_WORKDIR", str(tmp_path / "elsewhere"))
    ingest(source=f"synthetic:{CLIPS}", out=url, config_path=str(config))
    after = _shards(client, bucket, prefix)
    assert {k: after[k] for k in visible} == visible  # published shards are never rewritten
    keys = _check_bucket_output(s3, prefix, tmp_path / "read")
    metrics = json.loads(fs.cat(f"{bucket}/{prefix}metrics.json"))
    assert (metrics["clips_processed"], metrics["clips_reused"]) == (0, CLIPS)
    assert len(keys) == metrics["status"]["accepted"]


def _lease_holder(client, bucket: str, prefix: str) -> dict | None:
    from engine.bucket_lease import LEASE_NAME

    try:
        return json.loads(client.get_object(Bucket=bucket, Key=f"{prefix}{LEASE_NAME}")["Body"].read())
    except client.exceptions.NoSuchKey:
        return None


def _wait_for(condition, timeout: float = 10.0) -> None:
    deadline = time.time() + timeout
    while not condition():
        assert time.time() < deadline, "timed out"
        time.sleep(0.1)


@pytest.mark.timeout(120)
def test_one_writer_per_url_across_machines(prefect_server, s3, tmp_path, monkeypatch):
    """The bucket lease (engine/bucket_lease.py): a second writer of the same URL is refused while the first
    renews its lease; it gets the lease once the first gives it back, when a holder on another machine has not
    renewed it for the TTL (the store's clock), or at once when the holder was a process of this machine that is
    gone. A holder whose lease was taken over stops before its next upload."""
    from engine.bucket_lease import LEASE_NAME, BucketLease, LeaseHeldError
    from engine.store import StorageError
    from engine.stores import open_store, readable_copy
    from flows.ingest import ingest

    bucket, client, fs = s3
    prefix, url = "runs/l/", f"s3://{bucket}/runs/l"
    root = f"{bucket}/runs/l"
    first = BucketLease(fs, bucket, root, url, ttl_s=2).acquire()
    assert _lease_holder(client, bucket, prefix)["pid"] == os.getpid()
    time.sleep(3)  # longer than the TTL: renewals keep it
    held = r"another remind-curate process \(.+ pid \d+, lease renewed \d+ s ago\) is writing s3://"
    with pytest.raises(LeaseHeldError, match=held):
        BucketLease(fs, bucket, root, url, ttl_s=2).acquire()
    with pytest.raises(LeaseHeldError):  # the flow refuses before any work: nothing but the lease in the bucket
        ingest(source="synthetic:1", out=url)
    assert set(_objects(client, bucket, prefix)) == {LEASE_NAME}
    client.put_object(Bucket=bucket, Key=f"{prefix}run.json", Body=b"{}")  # as a run being written looks
    with pytest.raises(StorageError, match=r"is being written by another remind-curate process \(.+ pid \d+"):
        readable_copy(url)  # regenerate does not read a parent while it is written
    client.delete_object(Bucket=bucket, Key=f"{prefix}run.json")
    first.release()
    assert _lease_holder(client, bucket, prefix) is None
    second = BucketLease(fs, bucket, root, url, ttl_s=2).acquire()
    second.release()

    # A holder on another machine that stopped renewing: refused until the TTL has passed on the store's clock.
    client.put_object(Bucket=bucket, Key=f"{prefix}{LEASE_NAME}", Body=json.dumps(
        {"owner": "x", "host": "another-machine", "pid": os.getpid()}).encode())
    with pytest.raises(LeaseHeldError, match="another-machine"):
        BucketLease(fs, bucket, root, url, ttl_s=2).acquire()
    time.sleep(3.2)
    third = BucketLease(fs, bucket, root, url, ttl_s=2).acquire()
    assert _lease_holder(client, bucket, prefix)["owner"] == third.holder["owner"]
    third.release()

    # A holder of this machine whose process is gone (killed): taken over at once.
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    client.put_object(Bucket=bucket, Key=f"{prefix}{LEASE_NAME}", Body=json.dumps(
        {"owner": "y", "host": first.holder["host"], "pid": gone.pid}).encode())
    monkeypatch.setenv("REMIND_CURATE_S3_LEASE_S", "2")
    remote = open_store(url)
    remote.take_lease()
    assert _lease_holder(client, bucket, prefix)["owner"] == remote.lease.holder["owner"]

    # Taken over behind its back (it stalled past the TTL, say): its next upload is refused.
    client.put_object(Bucket=bucket, Key=f"{prefix}{LEASE_NAME}", Body=b'{"owner": "z"}')
    _wait_for(lambda: remote.lease.lost is not None)
    (remote.local / "note.txt").parent.mkdir(parents=True, exist_ok=True)
    (remote.local / "note.txt").write_text("late")
    with pytest.raises(LeaseHeldError, match="another process took its lease over"):
        remote.put([remote.local / "note.txt"])
    remote.give_back_lease()
    assert "note.txt" not in _objects(client, bucket, prefix)
    assert _lease_holder(client, bucket, prefix) == {"owner": "z"}  # not its lease any more: left alone
