"""Disk full while a shard is written: the run fails with a clear error, nothing corrupt is published under
shards/, and the same command with space completes with what an uninterrupted run produces."""
from __future__ import annotations

import errno
import os
import subprocess
from pathlib import Path

import pytest

from tasks.shards.validate import validate_path
from tasks.publish.manifest import read_manifest
from tests.faults.helpers import (BACKENDS, CLIPS, CONFIG_TEXT, assert_same_output, backend_config,
                                 prepacked_copy, shard_contents)

pytestmark = [pytest.mark.slow, pytest.mark.faults, pytest.mark.timeout(600)]


def _mount(directory, size: str, remount: bool = False) -> subprocess.CompletedProcess:
    options = f"remount,size={size}" if remount else f"size={size}"
    return subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(directory)], capture_output=True,
                          text=True, timeout=30)


@pytest.fixture
def small_fs(tmp_path):
    """A tmpfs the test can shrink and grow (needs root or CAP_SYS_ADMIN; skipped with the reason otherwise)."""
    mount_point = tmp_path / "small"
    mount_point.mkdir()
    done = _mount(mount_point, "256m")
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({done.stderr.strip() or done.returncode}); this test needs root")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], capture_output=True, timeout=30)


def _used_bytes(path) -> int:
    st = os.statvfs(path)
    return (st.f_blocks - st.f_bfree) * st.f_frsize


def test_disk_full_while_packing(prefect_server, reference_out, small_fs, tmp_path):
    from flows.ingest import ingest

    # Every clip finished and staged, no shard yet; then only room for about half of the shards.
    out = prepacked_copy(reference_out, small_fs / "out")
    config = tmp_path / "config.yaml"
    config.write_text(CONFIG_TEXT)
    shard_bytes = sum(p.stat().st_size for p in (reference_out / "shards").glob("*.tar"))
    limit_kib = (_used_bytes(small_fs) + shard_bytes // 2 + (128 << 10)) // 1024
    assert _mount(small_fs, f"{limit_kib}k", remount=True).returncode == 0

    with pytest.raises(OSError) as failure:
        ingest(source=f"synthetic:{CLIPS}", out=str(out), config_path=str(config))
    assert failure.value.errno == errno.ENOSPC and "No space left on device" in str(failure.value), failure.value

    # Only complete shards were published, each holding exactly what the clean run packed for its key.
    published = sorted((out / "shards").iterdir())
    assert published and all(p.name.startswith("shard-") and p.suffix == ".tar" for p in published), published
    assert 0 < len(published) < len(shard_contents(reference_out))
    report = validate_path(out)
    assert report.ok, [str(p) for p in report.problems]
    want = shard_contents(reference_out)
    for key, members in shard_contents(out).items():
        assert members == want[key], key
    assert not (out / "manifest.parquet").exists()  # no half-finished run summary either

    # The same command again, with space: it completes and the output equals the uninterrupted run's.
    assert _mount(small_fs, "256m", remount=True).returncode == 0
    summary = ingest(source=f"synthetic:{CLIPS}", out=str(out), config_path=str(config))
    assert summary["clips_reused"] == CLIPS and summary["clips_processed"] == 0
    assert_same_output(out, reference_out)
    assert validate_path(out).ok
    assert not list((out / ".tmp").iterdir())


def _tree_bytes(path) -> int:
    return sum(p.stat().st_size for p in Path(path).rglob("*") if p.is_file())


@pytest.mark.parametrize("backend", BACKENDS)
def test_disk_full_while_clips_are_written(prefect_server, reference_out, small_fs, tmp_path, backend):
    """The disk fills while the workers write clips (on Ray: inside the Ray workers). Clips that could not be
    written are failed ``io_error`` (transient) or the run stops with ENOSPC; either way nothing partial is visible,
    and the same command with space completes, reusing what finished, with the uninterrupted run's output."""
    from flows.ingest import ingest

    out = small_fs / "out"
    config = tmp_path / "config.yaml"
    config.write_text(backend_config(backend))
    limit_kib = (_used_bytes(small_fs) + _tree_bytes(reference_out) // 2) // 1024  # about half the clips fit
    assert _mount(small_fs, f"{limit_kib}k", remount=True).returncode == 0

    try:
        first = ingest(source=f"synthetic:{CLIPS}", out=str(out), config_path=str(config))
    except OSError as exc:
        assert exc.errno == errno.ENOSPC, exc
        first = None
    if first is not None:  # it completed: the clips without room are failed, retried by the next run
        failed = [r for r in read_manifest(out / "manifest.parquet") if r.status == "failed"]
        assert failed and all(r.reason == "io_error" and "No space left" in (r.error or "") for r in failed), failed
    published = sorted((out / "shards").iterdir()) if (out / "shards").exists() else []
    assert all(p.name.startswith("shard-") and p.suffix == ".tar" for p in published), published
    if published:
        assert validate_path(out).ok  # only whole shards, each one valid
    finished = len(list((out / "cache" / "clips").glob("*.json")))

    assert _mount(small_fs, "256m", remount=True).returncode == 0
    summary = ingest(source=f"synthetic:{CLIPS}", out=str(out), config_path=str(config))
    assert summary["clips_reused"] + summary["clips_processed"] == CLIPS
    assert 0 < summary["clips_reused"] <= finished < CLIPS  # some clips fit, not all; none was redone
    assert_same_output(out, reference_out)
    assert validate_path(out).ok
