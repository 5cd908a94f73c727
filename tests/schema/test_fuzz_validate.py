"""Fuzzing `validate`: 600 seeded mutations of a valid shard (byte flips, truncations, members swapped, moved or
dropped between samples). Validate must never crash, never report an internal error, and never pass a sample whose
content changed (the oracle knows which bytes of which members each mutation touched)."""
from __future__ import annotations

import random
import tarfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from tasks.shards.validate import validate_path
from tests.schema.conftest import members_of, write_tar

pytestmark = pytest.mark.timeout(300)
MUTATIONS = 600
DECODED = 20  # of which this many also decode the videos (bounded decode of damaged MP4s)
SUMS = "checksums.json"  # integrity metadata, not content: losing it changes no content


@dataclass(frozen=True)
class Member:
    key: str
    ext: str
    start: int  # header start
    end: int  # data end (padding excluded)


def _layout(path: Path) -> list[Member]:
    with tarfile.open(path) as tar:
        return [Member(*i.name.split(".", 1), i.offset, i.offset_data + i.size) for i in tar.getmembers()]


def _samples(path: Path) -> list[tuple[str, dict[str, bytes]]]:
    from tasks.shards.validate import iter_samples

    return [(str(raw["__key__"]), members_of(raw)) for raw in iter_samples(path)]


def _touched_by_bytes(layout: list[Member], offsets: list[int]) -> set[str]:
    return {m.key for m in layout if m.ext != SUMS and any(m.start <= o < m.end for o in offsets)}


def _mutate(rng: random.Random, data: bytes, layout: list[Member], samples: list, path: Path) -> tuple[str, set]:
    """Write one mutation of the shard to ``path``; returns (what, keys whose content changed)."""
    kind = rng.choice(["flip", "flip", "flip", "truncate", "swap", "move", "drop"])
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


def test_fuzzed_shards_never_crash_validate_nor_pass_changed_samples(small_shard: Path, tmp_path: Path) -> None:
    baseline = validate_path(small_shard)
    assert baseline.ok and baseline.samples == 3, [str(p) for p in baseline.problems]
    data, layout, samples = small_shard.read_bytes(), _layout(small_shard), _samples(small_shard)
    rng = random.Random(20261127)
    false_passes, internal, caught = [], [], 0
    for i in range(MUTATIONS):
        path = tmp_path / f"m{i % 4}.tar"
        what, touched = _mutate(rng, data, layout, samples, path)
        report = validate_path(path, decode_video=i < DECODED)
        internal += [f"{what}: {p}" for p in report.problems if "internal error" in p.problem]
        passed = report.passed() if report.problems or not touched else set(report.keys)
        if touched & passed:
            false_passes.append(f"{what}: {sorted(touched & passed)} passed")
        caught += bool(touched) and not report.ok
    assert not internal, internal[:5]
    assert not false_passes, false_passes[:5]
    assert caught > MUTATIONS // 2  # most mutations change content, and each of those was caught
