"""The one shard reader and writer (schemas.shards, schemas.shard_writer): extended headers are applied or refused
from their size, what the archive hides after its end is named, and a written shard is atomic and deterministic."""
from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest

from schemas.shard_writer import ShardWriter, member_order
from schemas.shards import Finding, raw_samples, read_sample, read_shard, shard_keys


def _tar(path: Path, members: dict[str, bytes], fmt: int = tarfile.PAX_FORMAT) -> Path:
    with tarfile.open(path, "w", format=fmt) as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def _findings(path: Path) -> list[str]:
    out = []
    for item in read_shard(path):
        if isinstance(item, Finding):
            out.append(f"{item.key}: {item.problem}")
        else:
            list(item.members())
            out += [f"{item.key}: {ext}: {why}" for ext, why in item.refused.items()]
            out += [f"{item.key}: broken: {item.broken}"] if item.broken else []
    return out


@pytest.mark.parametrize("fmt", [tarfile.PAX_FORMAT, tarfile.GNU_FORMAT])
def test_long_names_from_pax_and_gnu_headers_are_applied(tmp_path: Path, fmt: int) -> None:
    key = "k" * 150  # longer than a USTAR name field: tarfile writes an extended header
    path = _tar(tmp_path / "long.tar", {f"{key}.txt": b"caption", f"{key}.meta.json": b"{}"}, fmt)
    assert [(raw["__key__"], raw["txt"], raw["meta.json"]) for raw in raw_samples(path)] == [(key, b"caption", b"{}")]
    assert shard_keys(path) == {key: ["txt", "meta.json"]}
    assert _findings(path) == []


def test_an_extended_header_over_64_kib_is_refused_unread(tmp_path: Path) -> None:
    path = tmp_path / "pax.tar"
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tar:
        info = tarfile.TarInfo("a.txt")
        info.size, info.pax_headers = 2, {"comment": "c" * (80 << 10)}
        tar.addfile(info, io.BytesIO(b"hi"))
        info = tarfile.TarInfo("a.mp4")
        info.size = 3
        tar.addfile(info, io.BytesIO(b"mp4"))
    data = path.read_bytes()
    size = int(data[124:136].split(b"\0")[0], 8)
    assert size > 80 << 10  # the header tarfile wrote, refused from this field alone
    assert _findings(path) == [f"a: txt: extended header (x) of {size} bytes, more than the 65536 allowed: it and "
                               "the member it describes were not read"]
    assert [sorted(k for k in raw if not k.startswith("__")) for raw in raw_samples(path)] == [["mp4"]]


def test_what_hides_after_the_end_is_named(tmp_path: Path) -> None:
    good = _tar(tmp_path / "good.tar", {"a.txt": b"x"}).read_bytes()
    end = good.index(b"\0" * 1024, 1024)
    cases = {
        "lone": good[:end] + b"\0" * 512 + _tar(tmp_path / "b.tar", {"b.txt": b"y"}).read_bytes(),
        "after": good + b"hidden",
        "cut": good[:end],
        "corrupt": good[:end] + b"\x01" * 512 + b"\0" * 1024,
    }
    expected = {
        "lone": f"-: a lone zero block at byte {end} is followed by more data (hidden from tar readers)",
        "after": f"-: data after the end-of-archive blocks at byte {end} (hidden from tar readers)",
        "cut": f"a: broken: the shard ends without its end-of-archive blocks at byte {end}: it was cut short",
        "corrupt": f"a: broken: unreadable member header at byte {end} (corrupt or not a tar header): the last 1536 "
                   "bytes of the shard were not read",
    }
    for name, data in cases.items():
        (tmp_path / f"{name}.tar").write_bytes(data)
        assert _findings(tmp_path / f"{name}.tar") == [expected[name]], name


def test_members_are_streamed_and_what_is_left_unread_is_skipped(tmp_path: Path) -> None:
    path = _tar(tmp_path / "s.tar", {"a.mp4": b"1" * 3_000_000, "a.txt": b"t", "b.mp4": b"2", "b.txt": b"u"})
    seen = []
    for item in read_shard(path):
        assert not isinstance(item, Finding)
        for member in item.members():
            if member.ext == "mp4":
                first = next(member.chunks())  # read a little of it only
                seen.append((item.key, member.ext, len(first), member.size))
            else:
                seen.append((item.key, member.ext, member.read()))
    assert seen == [("a", "mp4", 1 << 20, 3_000_000), ("a", "txt", b"t"), ("b", "mp4", 1, 1), ("b", "txt", b"u")]
    assert read_sample(path, "b") == {"__key__": "b", "mp4": b"2", "txt": b"u"}
    with pytest.raises(KeyError, match="no sample 'c'"):
        read_sample(path, "c")


def test_the_writer_is_atomic_and_deterministic(tmp_path: Path) -> None:
    members = {"meta.json": b"{}", "mp4": b"\0" * 700, "checksums.json": b"{}", "txt": b"caption"}
    ordered = sorted(members, key=member_order)
    assert ordered == ["checksums.json", "mp4", "meta.json", "txt"]
    paths = []
    for name in ("one.tar", "two.tar"):
        (tmp_path / "tmp").mkdir(exist_ok=True)
        writer = ShardWriter(tmp_path / name, tmp_dir=tmp_path / "tmp")
        source = tmp_path / "payload.bin"
        source.write_bytes(b"p" * 5000)
        writer.add("k", [(ext, members[ext]) for ext in ordered] + [("extra.txt", source)])
        assert not (tmp_path / name).exists() and writer.tmp.exists()  # invisible until published
        size = writer.publish()
        assert size == (tmp_path / name).stat().st_size and size % 10240 == 0 and not writer.tmp.exists()
        paths.append(tmp_path / name)
    assert paths[0].read_bytes() == paths[1].read_bytes()
    with tarfile.open(paths[0]) as tar:
        infos = tar.getmembers()
        assert [i.name for i in infos] == [f"k.{ext}" for ext in ordered] + ["k.extra.txt"]
        assert {(i.mode, i.mtime, i.uid, i.uname) for i in infos} == {(0o444, 0, 0, "")}
    with pytest.raises(ValueError, match="boom"):
        with ShardWriter(tmp_path / "three.tar", tmp_dir=tmp_path / "tmp") as writer:
            writer.add("k", [("txt", b"x")])
            raise ValueError("boom")
    assert not (tmp_path / "three.tar").exists() and not writer.tmp.exists()  # a failed shard leaves nothing


def test_a_pax_sparse_member_is_refused_and_unused_pax_records_are_dropped(tmp_path: Path) -> None:
    path = tmp_path / "sparse.tar"
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tar:
        info = tarfile.TarInfo("a.txt")
        info.size, info.pax_headers = 1, {"GNU.sparse.major": "1", "GNU.sparse.minor": "0"}
        tar.addfile(info, io.BytesIO(b"x"))
        info = tarfile.TarInfo("a.mp4")
        info.size, info.pax_headers = 1, {f"note{i}": "n" for i in range(100)}
        tar.addfile(info, io.BytesIO(b"y"))
    assert _findings(path) == ["a: txt: sparse member (not read)"]
    assert [raw["mp4"] for raw in raw_samples(path)] == [b"y"]
