"""Disk full while a shard is written: the run fails with a clear error, nothing corrupt is published under
shards/, and the same command with space completes with what an uninterrupted run produces."""
from __future__ import annotations

import errno
import os
import subprocess

import pytest

from tasks.validate import validate_path
from tests.faults.helpers import CLIPS, CONFIG_TEXT, assert_same_output, prepacked_copy, shard_contents

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
