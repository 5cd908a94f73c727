"""`validate` is bounded whatever a shard holds: JSON built to be slow and MP4s whose tables replay one packet
are judged in under 2 s with their `shard: key: problem` lines, and the peak memory of the command stays under
300 MiB on a shard with a 200 MiB header, 64 members at their caps, an MP4 declaring 40 million samples and 10,000
tiny samples."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import numpy as np
import pytest

from remind_curate.cli import main
import schemas.mp4
from schemas.constants import DEPTH_HEIGHT, DEPTH_WIDTH, NUM_FRAMES
from schemas.mp4 import DecodeLimitError, probe_mp4
from schemas.sample import ENTRIES, JSON_MAX_BYTES, MP4_MAX_BYTES
from schemas.sample_io import npy_bytes, with_checksums
from tasks.shards.validate import iter_samples
from tests.schema.conftest import members_of, write_tar
from tests.schema.mp4_bombs import index_bomb, non_key_packet, replay_bomb

pytestmark = pytest.mark.timeout(300)
ROOT = Path(__file__).resolve().parents[2]
KEY = "synthetic-0-00000-w00"

HOSTILE = {  # sample key -> (member, bytes, the problem validate must name)
    "quotes": ("graph.json", b'{"a":"' + b'\\"' * (1 << 19) + b'"}',
               "graph.json: JSON string of 1048578 bytes at byte 5, more than the 65536 allowed (not parsed)"),
    "deep": ("meta.json", b"[" * 10_000 + b"]" * 10_000,
             "meta.json: JSON nested 10000 levels deep, more than the 64 allowed (not parsed)"),
    "number": ("graph.json", b'{"a":' + b"7" * (1 << 20) + b"}",
               "graph.json: JSON number of more than 64 characters at byte 5 (not parsed)"),
    "keys": ("meta.json", b"{" + b'"k":0,' * 999_999 + b'"k":0}',
             "meta.json: JSON holds 2000000 values, more than the 100000 allowed (not parsed)"),
}


@pytest.mark.parametrize("name", list(HOSTILE))
def test_hostile_json_is_judged_in_bounded_time(name: str, small_shard: Path, tmp_path: Path,
                                                capsys: pytest.CaptureFixture) -> None:
    member, data, problem = HOSTILE[name]
    good = members_of(next(iter_samples(small_shard)))
    shard = write_tar(tmp_path / "hostile.tar", [(name, with_checksums({**good, member: data}))])
    start = time.perf_counter()
    assert main(["validate", "--no-video", str(shard)]) == 1
    seconds = time.perf_counter() - start
    lines = capsys.readouterr().err.splitlines()
    assert f"hostile.tar: {name}: {problem}" in lines, lines
    assert seconds < 2.0, f"{name}: {seconds:.2f} s"


def _header(name: str, size: int, kind: bytes = tarfile.REGTYPE) -> bytes:
    info = tarfile.TarInfo(name)
    info.size, info.type = size, kind
    return info.tobuf(format=tarfile.USTAR_FORMAT)


def _member(handle, name: str, data: bytes | int, kind: bytes = tarfile.REGTYPE) -> None:
    """A member whose data is ``data``, or that many zero bytes left as a hole (no disk, no time to write)."""
    size = data if isinstance(data, int) else len(data)
    handle.write(_header(name, size, kind))
    if isinstance(data, int):
        handle.seek(size, os.SEEK_CUR)
    else:
        handle.write(data)
    handle.seek(-size % 512, os.SEEK_CUR)


def _capped_members() -> dict[str, bytes | int]:
    """64 members, each as large as its entry allows: documents that parse, arrays that load, videos of zeros."""
    text = json.dumps(["x" * 60_000] * (JSON_MAX_BYTES // 60_010)).encode()
    members: dict[str, bytes | int] = {"mp4": MP4_MAX_BYTES, "degraded.mp4": MP4_MAX_BYTES, "graph.json": text,
                                       "meta.json": text, "txt": b"a" * ENTRIES["txt"].max_bytes,
                                       "degraded.txt": b"b" * ENTRIES["degraded.txt"].max_bytes}
    wide = np.zeros((NUM_FRAMES, DEPTH_HEIGHT, DEPTH_WIDTH), np.float64)  # a wrong dtype, just under the cap
    for ext in ("depth.npy", "depth_conf.npy"):
        members[ext] = npy_bytes(wide)
    for ext in ("camera.npy", "intrinsics.npy", "degraded_camera.npy", "degraded_intrinsics.npy"):
        members[ext] = npy_bytes(np.zeros(ENTRIES[ext].max_bytes // 8 - 64, np.float64))
    for i in range(64 - len(members) - 1):
        members[f"future{i:02d}.json"] = text
    members["checksums.json"] = json.dumps({"sha256": {"k": "0" * 64}, "pad": "p" * 60_000}).encode()
    assert len(members) == 64 and all((m if isinstance(m, int) else len(m)) <= 2 * JSON_MAX_BYTES
                                      or m == MP4_MAX_BYTES for m in members.values())
    return members


def _hostile_shard(path: Path, mp4: bytes) -> Path:
    with open(path, "wb") as handle:
        _member(handle, "bomb.mp4", index_bomb(mp4, 40_000_000))  # FFmpeg's index alone: 1.5 GiB
        _member(handle, "a.x", 200 << 20, tarfile.XHDTYPE)  # a 200 MiB pax header: tarfile reads it whole
        _member(handle, "a.mp4", b"\0" * 100)
        _member(handle, "././@LongLink", 200 << 20, tarfile.GNUTYPE_LONGNAME)  # and a 200 MiB GNU long name
        _member(handle, "b.mp4", b"\0" * 100)
        for ext, data in _capped_members().items():
            _member(handle, f"big.{ext}", data)
        for i in range(10_000):
            _member(handle, f"tiny{i:05d}.txt", b"t")
        handle.write(b"\0" * 1024)
    return path


# The child's own high-water mark. Not wait4's ru_maxrss: Linux carries the forking parent's RSS across exec into
# it, so a test process grown to 8 GiB (a whole-suite run) made a 100 MiB validate read as 8 GiB.
_REPORT_OWN_PEAK = (
    "import atexit, sys\n"
    "_peak_file = sys.argv.pop(1)\n"
    "def _report():\n"
    "    hwm = next(line for line in open('/proc/self/status') if line.startswith('VmHWM:'))\n"
    "    open(_peak_file, 'w').write(hwm.split()[1])\n"
    "atexit.register(_report)\n")


def test_peak_memory_of_validate_stays_bounded(small_shard: Path, tmp_path: Path) -> None:
    shard = _hostile_shard(tmp_path / "hostile.tar", members_of(next(iter_samples(small_shard)))["mp4"])
    assert shard.stat().st_size > 900 << 20
    peak_file = tmp_path / "peak_kib.txt"
    command = [sys.executable, "-c", _REPORT_OWN_PEAK + "from remind_curate.cli import main; sys.exit(main(sys.argv[1:]))",
               str(peak_file), "validate", str(shard)]
    with open(tmp_path / "err.txt", "wb") as err:
        process = subprocess.run(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=err, timeout=600)
    lines = (tmp_path / "err.txt").read_text().splitlines()
    assert process.returncode == 1, lines[-5:]
    peak_mib = int(peak_file.read_text()) / 1024
    assert peak_mib <= 300, f"peak RSS {peak_mib:.0f} MiB"
    assert "hostile.tar: a: mp4: extended header (x) of 209715200 bytes, more than the 65536 allowed: it and the " \
           "member it describes were not read" in lines, lines[:5]
    assert "hostile.tar: b: mp4: extended header (L) of 209715200 bytes, more than the 65536 allowed: it and the " \
           "member it describes were not read" in lines, lines[:5]
    assert "hostile.tar: big: graph.json: expected a JSON object, got list" in lines  # 8 MiB parsed, then judged
    assert "hostile.tar: big: depth.npy dtype is float64, expected float16" in lines  # 16 MiB loaded, then judged
    assert any(line.startswith("hostile.tar: big: mp4 does not decode") for line in lines), lines[:20]
    assert "hostile.tar: tiny09999: missing required entry 'mp4'" in lines
    assert any(line.startswith("hostile.tar: bomb: mp4: sample table") and "declares 40000000 " in line
               and line.endswith("(not demuxed)") for line in lines), [line for line in lines if "bomb" in line]


def test_replayed_packets_are_judged_in_bounded_time(small_shard: Path, tmp_path: Path,
                                                    capsys: pytest.CaptureFixture) -> None:
    """Two samples whose stco points 100,000 times at one non-key packet (decodes to nothing): 60 s before."""
    members = members_of(next(iter_samples(small_shard)))
    offset, size = non_key_packet(members["mp4"])
    samples = []
    for i in range(2):
        meta = {**json.loads(members["meta.json"]), "key": f"replay{i}"}
        bomb = replay_bomb(members["mp4"], 100_000 + i, offset, size)  # distinct bytes: each one probed
        samples.append((f"replay{i}", with_checksums({**members, "meta.json": json.dumps(meta).encode(),
                                                     "mp4": bomb})))
    shard = write_tar(tmp_path / "replay.tar", samples)
    start = time.perf_counter()
    assert main(["validate", str(shard)]) == 1
    seconds = time.perf_counter() - start
    lines = capsys.readouterr().err.splitlines()
    for i in range(2):
        assert f"replay.tar: replay{i}: mp4: sample table 'stts' declares {100_000 + i} samples, more than the 648 " \
               "a clip may hold (not demuxed)" in lines, lines
    assert seconds < 2.0, f"{seconds:.2f} s"


@pytest.mark.parametrize("chunks, largest, problem", [
    (250, False, "demuxed more than 97 packets for at most 81 frames (stopped after 0 frames)"),
    (100_000, True, "demuxed more than 97 packets for at most 81 frames (stopped after 0 frames)"),
    (60, True, "the sample tables read the same bytes again (stopped after 0 frames)")])
def test_decoding_stops_at_packets_past_the_frames_or_bytes_past_the_file(
        chunks: int, largest: bool, problem: str, small_shard: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Behind the table bounds (switched off here), the demuxed packets are counted: a replay is stopped by the
    packets or bytes it hands out, not by the clock."""
    mp4 = members_of(next(iter_samples(small_shard)))["mp4"]
    bomb = replay_bomb(mp4, chunks, *non_key_packet(mp4, largest))
    monkeypatch.setattr(schemas.mp4, "check_mp4_boxes", lambda *args: None)
    start = time.perf_counter()
    with pytest.raises(DecodeLimitError, match=re.escape(problem)):
        probe_mp4(bomb, max_frames=NUM_FRAMES, max_seconds=60.0)
    assert time.perf_counter() - start < 2.0
