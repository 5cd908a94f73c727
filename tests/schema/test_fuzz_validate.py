"""Fuzzing `validate`: 1,050 seeded mutations, each under a time limit. Validate must never crash, never report an
internal error, never take more than 2 s on a case, and never pass a sample whose content is wrong.

- 650 mutations of a 3-sample shard, videos not decoded: byte flips, truncations, members swapped, moved or dropped
  between samples, camera arrays of another dtype (strings, datetimes, void records, complex, big-endian; half
  re-signed). The oracle knows which members of which samples each mutation touched: a touched sample must fail
  (its checksums or its dtype, at least).
- 400 mutations of a one-sample shard's video, decoded (at least 200 reach the decoder): flipped bytes (anywhere,
  or in the coded frames), truncations (anywhere, or inside ``moov``), impossible dimensions (tkhd, avc1), absurd
  frame counts and rates (stsz, stts, mdhd), index bombs (stsz/stts/stsc declaring up to 40 million samples) and
  replay bombs (stco pointing up to 100,000 times at one non-key packet). Half keep their stale checksums (the
  sample must fail); half are re-signed, so only the video checks stand between them and a pass: when validate
  passes one, an independent decode must find 81 frames of 480x832 H.264 at 16 fps.

Each case is timed: over ``CASE_LIMIT_S`` fails the test, and a case still running at ``HARD_LIMIT_S`` is stopped
by an alarm whose exception no ``except Exception`` inside validate can swallow.
"""
from __future__ import annotations

import io
import random
import signal
import tarfile
import time
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np
import pytest

from schemas.constants import FPS, HEIGHT, NUM_FRAMES, WIDTH
from schemas.sample_io import with_checksums
from tasks.shards.validate import ValidationReport, iter_samples, validate_path
from tests.schema.conftest import members_of, write_tar
from tests.schema.mp4_bombs import index_bomb, packets, replay_bomb

pytestmark = pytest.mark.timeout(300)
SHARD_MUTATIONS = 650
VIDEO_MUTATIONS = 400  # about 60% reach the decoder: the others are refused by the MP4 structure check
CASE_LIMIT_S = 2.0
HARD_LIMIT_S = 2 * CASE_LIMIT_S  # a case still running then is stopped (and fails the test)
SUMS = "checksums.json"  # integrity metadata, not content: losing it changes no content


@dataclass(frozen=True)
class Member:
    key: str
    ext: str
    start: int  # header start
    end: int  # data end (padding excluded)


class CaseTimeout(BaseException):  # not an Exception: validate turns those into findings
    pass


def _layout(path: Path) -> list[Member]:
    with tarfile.open(path) as tar:
        return [Member(*i.name.split(".", 1), i.offset, i.offset_data + i.size) for i in tar.getmembers()]


def _samples(path: Path) -> list[tuple[str, dict[str, bytes]]]:
    return [(str(raw["__key__"]), members_of(raw)) for raw in iter_samples(path)]


def _timed(path: Path, decode_video: bool) -> tuple[ValidationReport, float]:
    def stop(*_: object) -> None:
        raise CaseTimeout(f"validate ran past {HARD_LIMIT_S} s")

    previous = signal.signal(signal.SIGALRM, stop)
    signal.setitimer(signal.ITIMER_REAL, HARD_LIMIT_S)
    start = time.perf_counter()
    try:
        return validate_path(path, decode_video=decode_video), time.perf_counter() - start
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _touched_by_bytes(layout: list[Member], offsets: list[int]) -> set[str]:
    return {m.key for m in layout if m.ext != SUMS and any(m.start <= o < m.end for o in offsets)}


def _mutate_shard(rng: random.Random, data: bytes, layout: list[Member], samples: list, path: Path
                  ) -> tuple[str, set]:
    """Write one mutation of the shard to ``path``; returns (what, keys whose content changed)."""
    kind = rng.choice(["flip", "flip", "flip", "truncate", "swap", "move", "drop", "dtype"])
    if kind == "flip":
        mutated = bytearray(data)
        offsets = [rng.randrange(len(data)) for _ in range(rng.choice([1, 1, 2, 8]))]
        for offset in offsets:
            mutated[offset] ^= rng.randrange(1, 256)
        path.write_bytes(bytes(mutated))
        return f"flip {offsets}", _touched_by_bytes(layout, offsets)
    if kind == "truncate":
        cut = rng.randrange(len(data))
        path.write_bytes(data[:cut])
        return f"truncate {cut}", {m.key for m in layout if m.ext != SUMS and m.end > cut}
    edited = [(key, dict(members)) for key, members in samples]
    a, b = rng.sample(range(len(edited)), 2)
    (key_a, ma), (key_b, mb) = edited[a], edited[b]
    if kind == "swap":
        ext = rng.choice(sorted(set(ma) & set(mb)))
        ma[ext], mb[ext] = mb[ext], ma[ext]
    elif kind == "dtype":  # an array no camera check can do arithmetic on; half re-signed
        ext = rng.choice(sorted({"camera.npy", "intrinsics.npy"} & set(ma)))
        dtype, fill = rng.choice(WEIRD_DTYPES)
        ma[ext] = _npy(np.full(np.load(io.BytesIO(ma[ext])).shape, fill, dtype=dtype))
        if rng.random() < 0.5:
            edited[a] = (key_a, with_checksums({k: v for k, v in ma.items() if k != SUMS}))
    elif kind == "move":
        ext = rng.choice(sorted(ma))
        mb[ext] = ma.pop(ext)
    else:
        ext = rng.choice(sorted(ma))
        del ma[ext]

    def content(members: dict[str, bytes]) -> dict[str, bytes]:
        return {k: v for k, v in members.items() if k != SUMS}

    touched = {key for (key, before), (_, after) in zip(samples, edited) if content(before) != content(after)}
    write_tar(path, edited)
    return f"{kind} {ext} {key_a}->{key_b}", touched


WEIRD_DTYPES = [("<U1", "a"), ("M8[s]", 1), ("V4", b"\1\2\3\4"), ("complex64", 1), (">f4", 1.0), ("int32", 1)]


def _npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def _patch(data: bytearray, box: bytes, offset: int, width: int, value: int) -> bool:
    """Overwrite a big-endian field ``offset`` bytes after a box's type; False when the box is not there."""
    at = data.find(box)
    if at < 0 or at + 4 + offset + width > len(data):
        return False
    data[at + 4 + offset:at + 4 + offset + width] = (value % (1 << (8 * width))).to_bytes(width, "big")
    return True


ABSURD = [0, 1, 2, 7, 65535, 100_000, 2**31 - 1, 2**32 - 1]


def _mutate_video(rng: random.Random, mp4: bytes, non_key: list[tuple[int, int, bool]]) -> tuple[str, bytes]:
    data = bytearray(mp4)
    kind = rng.choice(["flip", "flip-frames", "truncate", "truncate-moov", "dimensions", "counts", "rate", "index",
                       "replay"])
    moov, mdat = mp4.find(b"moov"), mp4.find(b"mdat")
    if kind == "index":  # FFmpeg's index of 40 million samples: 1.5 GiB, from a few bytes of stsz/stts/stsc
        count = rng.choice([81, 1_000, 100_000, 10_000_000, 40_000_000])
        return f"index {count}", index_bomb(mp4, count, rng.choice([1, 800]))
    if kind == "replay":  # one non-key packet read again and again, decoding to nothing
        chunks, (offset, size, _) = rng.choice([60, 100, 500, 5_000, 100_000]), rng.choice(non_key)
        return f"replay {chunks}x{size}", replay_bomb(mp4, chunks, offset, size)
    if kind == "flip":
        for _ in range(rng.choice([1, 2, 8, 32])):
            data[rng.randrange(len(data))] ^= rng.randrange(1, 256)
    elif kind == "flip-frames":  # inside the coded frames: the decoder's error paths
        end = moov if moov > mdat else len(data)
        for _ in range(rng.choice([1, 4, 16])):
            data[rng.randrange(mdat + 4, end)] ^= rng.randrange(1, 256)
    elif kind == "truncate":
        data = data[:rng.randrange(len(data))]
    elif kind == "truncate-moov":
        data = data[:rng.randrange(moov - 4, len(data))] if moov > mdat else data[:rng.randrange(moov, mdat)]
    elif kind == "dimensions":
        value = rng.choice([0, 1, 16, 4096, 16384, 65535])
        box, offset, width = rng.choice([(b"tkhd", 76, 4), (b"tkhd", 80, 4), (b"avc1", 24, 2), (b"avc1", 26, 2)])
        _patch(data, box, offset, width, value << 16 if box == b"tkhd" else value)
    elif kind == "counts":
        box, offset = rng.choice([(b"stsz", 8), (b"stts", 4), (b"stts", 8), (b"stts", 12), (b"stsc", 4),
                                  (b"stco", 4), (b"mdhd", 16), (b"mvhd", 16)])
        _patch(data, box, offset, 4, rng.choice(ABSURD))
    else:
        _patch(data, b"mdhd", 12, 4, rng.choice(ABSURD))
    return kind, bytes(data)


def _really_valid(mp4: bytes) -> bool:
    """The oracle, written apart from the validator: decode everything, count, compare with the format."""
    try:
        with av.open(io.BytesIO(mp4), format="mp4") as container:
            stream = container.streams.video[0]
            frames = sizes = 0
            for frame in container.decode(stream):
                frames += 1
                sizes = (frame.height, frame.width) if frames == 1 or sizes == (frame.height, frame.width) else None
                if frames > NUM_FRAMES:
                    return False
            rate = float(stream.average_rate or 0)
            return (frames == NUM_FRAMES and sizes == (HEIGHT, WIDTH) and abs(rate - FPS) < 1e-3
                    and stream.codec_context.name == "h264")
    except Exception:  # noqa: BLE001 - anything that does not decode is not valid
        return False


def test_fuzzed_shards_never_crash_validate_nor_pass_changed_samples(small_shard: Path, tmp_path: Path) -> None:
    baseline = validate_path(small_shard)
    assert baseline.ok and baseline.samples == 3, [str(p) for p in baseline.problems]
    data, layout, samples = small_shard.read_bytes(), _layout(small_shard), _samples(small_shard)
    rng = random.Random(20261127)
    false_passes, internal, slow, caught = [], [], [], 0
    for i in range(SHARD_MUTATIONS):
        path = tmp_path / f"m{i % 4}.tar"
        what, touched = _mutate_shard(rng, data, layout, samples, path)
        report, seconds = _timed(path, decode_video=False)
        internal += [f"{what}: {p}" for p in report.problems if "internal error" in p.problem]
        slow += [f"{what}: {seconds:.2f} s"] if seconds > CASE_LIMIT_S else []
        passed = report.passed() if report.problems or not touched else set(report.keys)
        if touched & passed:
            false_passes.append(f"{what}: {sorted(touched & passed)} passed")
        caught += bool(touched) and not report.ok
    assert not internal, internal[:5]
    assert not false_passes, false_passes[:5]
    assert not slow, slow[:5]
    assert caught > SHARD_MUTATIONS // 2  # most mutations change content, and each of those was caught


def test_fuzzed_videos_are_decoded_within_bounds_and_never_pass_when_wrong(small_shard: Path,
                                                                          tmp_path: Path) -> None:
    key, members = _samples(small_shard)[0]
    assert set(members) >= {"mp4"} and "degraded.mp4" not in members  # one video per case
    rng = random.Random(20261203)
    non_key = [p for p in packets(members["mp4"]) if not p[2]]
    false_passes, internal, slow, decoded, structure, kinds = [], [], [], 0, 0, set()
    for i in range(VIDEO_MUTATIONS):
        kind, mp4 = _mutate_video(rng, members["mp4"], non_key)
        signed = i % 2 == 1
        mutated = {**members, "mp4": mp4}
        path = write_tar(tmp_path / f"v{i % 4}.tar", [(key, with_checksums(mutated) if signed else mutated)])
        report, seconds = _timed(path, decode_video=True)
        what = f"case {i} {kind} ({'re-signed' if signed else 'stale checksums'})"
        decoded += mp4 != members["mp4"] and not any(p.check == "mp4-structure" for p in report.problems)
        structure += any(p.check == "mp4-structure" for p in report.problems)
        kinds.add(kind.split()[0])
        internal += [f"{what}: {p}" for p in report.problems if "internal error" in p.problem]
        slow += [f"{what}: {seconds:.2f} s"] if seconds > CASE_LIMIT_S else []
        if report.ok and mp4 != members["mp4"] and (not signed or not _really_valid(mp4)):
            false_passes.append(what)
    assert not internal, internal[:5]
    assert not false_passes, false_passes[:5]
    assert not slow, slow[:5]
    print(f"{decoded} changed videos decoded, {structure} refused before decoding")
    assert decoded >= 200 and len(kinds) == 9  # changed videos that reached the decoder (not refused before it)
