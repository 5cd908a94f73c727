"""The kill-resume suite's shard watcher can tell a truncated shard from a complete one (tarfile cannot)."""
from __future__ import annotations

import io
import os
import tarfile
import time
from pathlib import Path

import pytest

from tests.faults.helpers import ShardWatcher, TruncatedShard, strict_tar_members


def _tar(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


MEMBERS = {"a.mp4": b"x" * 1500, "a.graph.json": b"{}", "b.mp4": b"y" * 700, "b.meta.json": b"{}" * 300}


def _member_boundary(data: bytes, count: int) -> int:
    """Byte offset just after the first ``count`` members (header + padded payload)."""
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        members = tar.getmembers()
    return members[count].offset if count < len(members) else members[-1].offset_data + \
        -(-members[-1].size // 512) * 512


def test_complete_archive_lists_its_members() -> None:
    assert strict_tar_members(_tar(MEMBERS)) == list(MEMBERS)


def test_archive_cut_at_a_member_boundary_is_truncated_although_tarfile_accepts_it() -> None:
    data = _tar(MEMBERS)
    cut = data[:_member_boundary(data, 2)]
    with tarfile.open(fileobj=io.BytesIO(cut)) as tar:  # what the old watcher relied on
        assert [m.name for m in tar] == ["a.mp4", "a.graph.json"]
    with pytest.raises(TruncatedShard, match="end-of-archive"):
        strict_tar_members(cut)
    with pytest.raises(TruncatedShard, match="one zero block"):
        strict_tar_members(cut + bytes(512))


@pytest.mark.parametrize("fraction", [0.1, 0.5, 0.9])
def test_archive_cut_inside_a_member_is_truncated(fraction: float) -> None:
    data = _tar(MEMBERS)
    end = _member_boundary(data, len(MEMBERS))
    with pytest.raises(TruncatedShard):
        strict_tar_members(data[:int(end * fraction) // 512 * 512 + 100])


def _write_slowly(path: Path, members: dict[str, bytes], atomic: bool) -> None:
    """A shard writer: member by member, either in place (what pack must never do) or via a rename."""
    target = path.parent.parent / ".tmp" / f"{path.name}.part" if atomic else path
    target.parent.mkdir(exist_ok=True)
    with tarfile.open(target, "w", format=tarfile.USTAR_FORMAT) as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
            tar.fileobj.flush()
            time.sleep(0.15)
    if atomic:
        os.replace(target, path)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("atomic", [False, True])
def test_watcher_catches_a_shard_written_in_place(tmp_path: Path, atomic: bool) -> None:
    shards = tmp_path / "shards"
    shards.mkdir()
    watcher = ShardWatcher(shards, interval=0.01)
    watcher.start()
    try:
        _write_slowly(shards / "shard-000000.tar", MEMBERS, atomic)
        time.sleep(0.2)
    finally:
        watcher.stop.set()
        watcher.join()
    assert watcher.reads > 0
    if atomic:  # as pack does: written under OUT/.tmp, renamed into shards/ when complete
        assert not watcher.bad and watcher.seen == {"shard-000000.tar": list(MEMBERS)}, watcher.bad
    else:
        assert any(b.startswith("shard-000000.tar:") for b in watcher.bad), watcher.bad
