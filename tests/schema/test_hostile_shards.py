"""`validate` on shards built to hurt: it never extracts, executes or follows anything, and names what it found as
`shard: key: problem`, within bounded time and memory."""
from __future__ import annotations

import gzip
import io
import json
import os
import tarfile
import tracemalloc
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from remind_curate.cli import main
from schemas.mp4 import DecodeLimitError, probe_mp4
from schemas.untrusted import UntrustedError, json_depth, load_json, npy_header
from schemas.sample_io import with_checksums
from tasks.shards.validate import validate_path
from tests.schema.conftest import members_of, write_tar

pytestmark = pytest.mark.timeout(120)
KEY = "synthetic-0-00000-w00"


def _good(small_shard: Path) -> dict[str, bytes]:
    from tasks.shards.validate import iter_samples

    return members_of(next(iter_samples(small_shard)))


def _special(tar: tarfile.TarFile, name: str, kind: bytes, linkname: str = "") -> None:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, linkname
    if kind in (tarfile.CHRTYPE, tarfile.BLKTYPE):
        info.devmajor, info.devminor = 1, 3
    tar.addfile(info)


def _lines(capsys: pytest.CaptureFixture, path: Path) -> list[str]:
    assert main(["validate", "--no-video", str(path)]) == 1
    return capsys.readouterr().err.splitlines()


def test_links_devices_and_escaping_names_are_named_never_followed(small_shard: Path, tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("never read")
    shard = tmp_path / "links.tar"
    with tarfile.open(shard, "w", format=tarfile.GNU_FORMAT) as tar:
        _special(tar, "a.mp4", tarfile.SYMTYPE, str(secret))
        _special(tar, "a.graph.json", tarfile.LNKTYPE, "b.graph.json")
        _special(tar, "a.meta.json", tarfile.CHRTYPE)
        _special(tar, "a.camera.npy", tarfile.BLKTYPE)
        _special(tar, "a.txt", tarfile.FIFOTYPE)
        _special(tar, "a.depth.npy", tarfile.DIRTYPE)
        for name in ("/etc/passwd.mp4", "../../outside.mp4", "sub/dir.mp4", "evil\nshard.tar: x: OK.mp4"):
            info = tarfile.TarInfo(name)
            info.size = 4
            tar.addfile(info, io.BytesIO(b"data"))
    lines = _lines(capsys, shard)
    expected = [
        f"links.tar: a: mp4: symlink to '{secret}' (not followed)",
        "links.tar: a: graph.json: hard link to 'b.graph.json' (not followed)",
        "links.tar: a: meta.json: character device member (not read)",
        "links.tar: a: camera.npy: block device member (not read)",
        "links.tar: a: txt: FIFO member (not read)",
        "links.tar: a: depth.npy: directory member (samples are flat files)",
        "links.tar: /etc/passwd.mp4: absolute member name (not read)",
        "links.tar: ../../outside.mp4: member name escapes the archive with '..' (not read)",
        "links.tar: sub/dir.mp4: member name has a directory part; samples are flat (not read)",
        "links.tar: evil\\nshard.tar: x: OK.mp4: member name has control characters (not read)",
    ]
    for line in expected:
        assert line in lines, (line, lines)
    assert not any("missing required entry" in line for line in lines)  # the cause is named, not a symptom
    assert not (Path.cwd() / "a.mp4").exists() and secret.read_text() == "never read"


def test_oversized_member_is_skipped_unread(small_shard: Path, tmp_path: Path,
                                            capsys: pytest.CaptureFixture) -> None:
    """A 300 MiB member (a sparse file: no disk, no time to write) is reported from its header and never read."""
    shard = write_tar(tmp_path / "big.tar", [(KEY, _good(small_shard))])
    data = shard.read_bytes()
    end = data.rindex(b"\0" * 1024, 0, len(data) - 1024) if data.endswith(b"\0" * 1024) else len(data)
    body = data[:end].rstrip(b"\0")
    body += b"\0" * (-len(body) % 512)
    info = tarfile.TarInfo(f"{KEY}.txt.big.txt")
    info.size = 300 << 20
    with open(shard, "wb") as handle:
        handle.write(body + info.tobuf(format=tarfile.USTAR_FORMAT))
        handle.truncate(handle.tell() + info.size + 1024)
    tracemalloc.start()
    lines = _lines(capsys, shard)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert f"big.tar: {KEY}: txt.big.txt: {300 << 20} bytes, more than the {256 << 20} its entry allows (not read)" \
        in lines, lines
    assert peak < 64 << 20  # the member was never read into memory


def test_pickled_npy_and_deep_json_are_named(small_shard: Path, tmp_path: Path,
                                             capsys: pytest.CaptureFixture) -> None:
    members = _good(small_shard)
    buffer = io.BytesIO()
    np.save(buffer, np.array([{"x": 1}, None], dtype=object), allow_pickle=True)
    pickled = {**members, "camera.npy": buffer.getvalue()}
    deep = {**members, "meta.json": b"[" * 100_000 + b"]" * 100_000}
    extra = {**members, "future.npy": buffer.getvalue(), "future.json": b'{"a":' * 200 + b"1" + b"}" * 200}
    shard = write_tar(tmp_path / "nasty.tar", [("pickled", pickled), ("deep", deep), ("extra", extra)])
    lines = _lines(capsys, shard)
    assert any(line.startswith("nasty.tar: pickled: camera.npy: not a plain .npy array (pickled object array")
               for line in lines), lines
    assert any(line.startswith("nasty.tar: deep: meta.json: JSON nested 100000 levels deep, more than the 64")
               for line in lines), lines
    assert "nasty.tar: extra: future.npy: pickled object array (dtype object): not loaded, nothing executed" in lines
    assert "nasty.tar: extra: future.json: JSON nested 200 levels deep, more than the 64 allowed (not parsed)" \
        in lines


def test_untrusted_parsers_refuse_before_reading() -> None:
    assert json_depth(b'{"a": "[[[[[[", "b": [[1]]}') == 3  # brackets inside strings do not count
    with pytest.raises(UntrustedError, match="not UTF-8"):
        load_json(b'{"a": "\xff"}')
    header = io.BytesIO()
    np.save(header, np.zeros((4, 4), np.float32))
    with pytest.raises(UntrustedError, match="holds 60 data bytes, its header"):
        npy_header(header.getvalue()[:-4])  # a header that promises more than the payload holds


def _encode(frames: int, size: int = 64) -> bytes:
    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format="mp4") as container:
        stream = container.add_stream("mpeg4", rate=Fraction(16))
        stream.height = stream.width = size
        stream.pix_fmt = "yuv420p"
        for i in range(frames):
            image = np.full((size, size, 3), i % 255, np.uint8)
            container.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        container.mux(stream.encode())
    return buffer.getvalue()


def test_mp4_decoding_is_bounded_in_frames_pixels_and_time(small_shard: Path, tmp_path: Path,
                                                           capsys: pytest.CaptureFixture) -> None:
    long = _encode(400)
    info = probe_mp4(long, max_frames=81)
    assert info.more and info.frames == 81  # stopped there, not decoded to the end
    with pytest.raises(DecodeLimitError, match="more than the 1000 pixels"):
        probe_mp4(long, max_pixels=1000)
    with pytest.raises(DecodeLimitError, match="decoding took more than 0 s"):
        probe_mp4(long, max_seconds=0)
    shard = write_tar(tmp_path / "long.tar", [(KEY, {**_good(small_shard), "mp4": long})])
    assert main(["validate", str(shard)]) == 1
    assert f"long.tar: {KEY}: mp4 has more than 81 frames (decoding stopped there)" in capsys.readouterr().err


def test_compressed_bombs_and_fifos_are_not_opened(small_shard: Path, tmp_path: Path,
                                                   capsys: pytest.CaptureFixture) -> None:
    folder = tmp_path / "shards"
    folder.mkdir()
    (folder / "a-bomb.tar").write_bytes(gzip.compress(b"\0" * (64 << 20)))  # 64 MiB of zeros in 64 KiB
    os.mkfifo(folder / "b-fifo.tar")  # opening it would block forever
    (folder / "c-cut.tar").write_bytes(small_shard.read_bytes()[:-3000])
    lines = _lines(capsys, folder)
    assert "a-bomb.tar: -: a gzip file, not a tar (compressed shards are not opened)" in lines, lines
    assert "b-fifo.tar: -: not a regular file (not read)" in lines
    assert any(line.startswith("c-cut.tar: synthetic-0-00002-w00: the shard breaks after this sample's members")
               for line in lines), lines


def test_checksums_catch_a_changed_member(small_shard: Path, tmp_path: Path) -> None:
    members = _good(small_shard)
    meta = json.loads(members["meta.json"])
    meta["caption"] = meta["caption"].replace("a", "o", 1)  # valid JSON, valid model: only the digest can tell
    shard = write_tar(tmp_path / "edited.tar", [(KEY, {**members, "meta.json": json.dumps(meta).encode()})])
    report = validate_path(shard, decode_video=False)
    assert [p.problem for p in report.problems] == [
        "meta.json: content differs from its checksums.json digest (changed after packing)"]


def test_text_from_a_shard_cannot_break_or_forge_report_lines(small_shard: Path, tmp_path: Path,
                                                             capsys: pytest.CaptureFixture) -> None:
    members = _good(small_shard)
    graph = json.loads(members["graph.json"])
    forged = {**graph, "per_frame": {"x\rforged.tar: k: OK\u2028\x1b[31m": [1.0]}}
    lone = b'{"a": "\\ud800"}'  # valid JSON; no UTF-8 writer (nor pydantic) takes the str it decodes to
    shard = write_tar(tmp_path / "text.tar", [
        ("forged", with_checksums({**members, "graph.json": json.dumps(forged).encode()})),
        ("lone", with_checksums({**members, "meta.json": lone}))])
    lines = _lines(capsys, shard)
    assert "text.tar: forged: graph.json: Value error, per_frame.x\\rforged.tar: k: OK\\u2028\\x1b[31m has 1 " \
           "entries, expected 81" in lines, lines
    assert "text.tar: lone: meta.json: a \\u escape names a lone UTF-16 surrogate (not text)" in lines, lines
    assert not any("internal error" in line for line in lines)


def _array(dtype: str, fill: object, shape: tuple[int, ...]) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, np.full(shape, fill, dtype=dtype))
    return buffer.getvalue()


WEIRD_DTYPES = {"<U1": "a", "M8[s]": 1, "V4": b"\1\2\3\4", "complex64": 1, ">f4": 1.0}


@pytest.mark.parametrize("ext", ["camera.npy", "intrinsics.npy"])
@pytest.mark.parametrize("dtype", list(WEIRD_DTYPES))
def test_an_array_of_another_dtype_is_named_by_its_dtype_alone(small_shard: Path, tmp_path: Path, ext: str,
                                                               dtype: str) -> None:
    """Strings, datetimes, void records, complex or big-endian floats: the checks of camera values skip them
    (they never reach arithmetic), so the one problem is the dtype, never an internal error."""
    members = _good(small_shard)
    shape = np.load(io.BytesIO(members[ext])).shape
    shard = write_tar(tmp_path / "dtype.tar", [(KEY, with_checksums({**{k: v for k, v in members.items()
                                                                        if k != "checksums.json"},
                                                                     ext: _array(dtype, WEIRD_DTYPES[dtype],
                                                                                 shape)}))])
    report = validate_path(shard, decode_video=False)
    assert [(p.check, p.problem) for p in report.problems] == [
        ("npy-dtype", f"{ext} dtype is {np.dtype(dtype)}, expected float32")], report.problems
