"""What the fault suite shares: one uninterrupted reference run, and comparisons of outputs against it.

The reference is computed once per test session (in-process, against the session Prefect server) and reused by
every fault test and by tests/test_ray_ingest.py, so the suite pays for the clean run only once.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import tarfile
import threading
import time
from pathlib import Path
from typing import Any

from tasks.publish.manifest import read_manifest

CLIPS = 6
CONFIG_TEXT = (  # many small shards: more moments for a fault to hit; x264 ultrafast: the suite stays quick
    "pack:\n  max_shard_samples: 1\nencode:\n  preset: ultrafast\n")
ROW_IGNORED = ("run_id", "seconds")  # differ between runs by nature
# Each fault suite runs on both executor backends: the config of a run on the Ray Data backend adds this (a
# local Ray of 2 logical CPUs started by the run itself; engine/ray_data.py).
RAY_CONFIG = "ray:\n  enabled: true\n  num_cpus: 2\n"
BACKENDS = ("local", "ray")


def backend_config(backend: str, config_text: str = CONFIG_TEXT) -> str:
    """The config text of a run on ``backend``; the clip sections are the same, so are the outputs."""
    return config_text + (RAY_CONFIG if backend == "ray" else "")

_cache: dict[tuple[int, str], Path] = {}


def uninterrupted_run(tmp_root: Path, clips: int = CLIPS, config_text: str = CONFIG_TEXT) -> Path:
    """OUT of a clean, in-process ingest of synthetic:clips (computed once per session). Read-only for callers."""
    key = (clips, config_text)
    if key not in _cache:
        from flows.ingest import ingest

        root = Path(tmp_root) / f"reference-{clips}-{len(_cache)}"
        root.mkdir(parents=True)
        config = root / "config.yaml"
        config.write_text(config_text)
        ingest(source=f"synthetic:{clips}", out=str(root / "out"), config_path=str(config))
        _cache[key] = root / "out"
    return _cache[key]


def manifest_rows(out: Path) -> list[dict[str, Any]]:
    """Manifest rows without the per-run columns, in a canonical order."""
    rows = [{k: v for k, v in r.model_dump(mode="json").items() if k not in ROW_IGNORED}
            for r in read_manifest(Path(out) / "manifest.parquet")]
    return sorted(rows, key=lambda r: (r["clip_id"], r["window"] if r["window"] is not None else -1,
                                       r["key"] or "", r["status"]))


def shard_contents(out: Path) -> dict[str, dict[str, bytes]]:
    """key -> member -> bytes over every published shard; meta.json canonicalised without its run_id (the only
    field that may differ between an interrupted-and-resumed run and a clean one). Fails on a duplicate key."""
    contents: dict[str, dict[str, bytes]] = {}
    for shard in sorted((Path(out) / "shards").glob("*.tar")):
        with tarfile.open(shard, "r:") as tar:
            for info in tar:
                key, _, ext = info.name.partition(".")
                data = tar.extractfile(info).read()
                assert len(data) == info.size, f"{shard.name}: {info.name} is truncated"
                if ext == "meta.json":
                    meta = json.loads(data)
                    meta.pop("run_id", None)
                    data = json.dumps(meta, sort_keys=True).encode()
                if ext == "checksums.json":  # holds meta.json's digest, hence its run_id
                    sums = json.loads(data)
                    sums["sha256"].pop("meta.json", None)
                    data = json.dumps(sums, sort_keys=True).encode()
                member = contents.setdefault(key, {})
                assert ext not in member, f"duplicate member {info.name} (key packed twice)"
                member[ext] = data
    return contents


def shards_files(out: Path) -> list[str]:
    return sorted(p.name for p in (Path(out) / "shards").iterdir())


def assert_same_output(out: Path, reference: Path) -> None:
    """The run at ``out`` produced what the reference did: rows, keys, member bytes; shards/ holds only tars."""
    got_rows, want_rows = manifest_rows(out), manifest_rows(reference)
    assert len(got_rows) == len(want_rows), (len(got_rows), len(want_rows))
    for got_row, want_row in zip(got_rows, want_rows):
        differing = {k: (got_row.get(k), want_row.get(k)) for k in set(got_row) | set(want_row)
                     if got_row.get(k) != want_row.get(k)}
        assert not differing, f"manifest row {want_row['clip_id']} w{want_row['window']}: {differing}"
    got, want = shard_contents(out), shard_contents(reference)
    assert sorted(got) == sorted(want), (sorted(set(got) ^ set(want)))
    for key in want:
        assert sorted(got[key]) == sorted(want[key]), key
        for ext in want[key]:
            assert got[key][ext] == want[key][ext], f"{key}.{ext} differs from the uninterrupted run"
    assert all(n.endswith(".tar") and not n.startswith(".") for n in shards_files(out)), shards_files(out)


def prepacked_copy(reference: Path, dest: Path) -> Path:
    """The state of the reference run just before packing (every clip finished, every sample staged, no shard):
    what a run killed between its last clip and its first shard leaves. Rebuilt from the reference's ledger,
    window cache and shard members, with the staged mp4 hard-linked to the cached clean clip as ingest does."""
    dest.mkdir(parents=True, exist_ok=True)
    for name in ("run.json", "config.yaml"):
        shutil.copy2(reference / name, dest / name)
    shutil.copytree(reference / "cache" / "clips", dest / "cache" / "clips")
    shutil.copytree(reference / "cache" / "windows", dest / "cache" / "windows")
    for sub in ("shards", ".tmp", "cache/samples", "previews"):
        (dest / sub).mkdir(parents=True, exist_ok=True)
    windows = {p.name.lower(): p for p in (dest / "cache" / "windows").iterdir()}
    for shard in sorted((reference / "shards").glob("*.tar")):
        with tarfile.open(shard, "r:") as tar:
            for info in tar:
                key, _, ext = info.name.partition(".")
                target = dest / "cache" / "samples" / key / ext
                target.parent.mkdir(parents=True, exist_ok=True)
                data = tar.extractfile(info).read()
                clean = windows.get(key, Path("/nonexistent")) / "clean.mp4"
                if ext == "mp4" and clean.exists() and clean.read_bytes() == data:
                    os.link(clean, target)
                else:
                    target.write_bytes(data)
    return dest


def flip_byte(path: Path, offset_fraction: float = 0.5) -> None:
    """Corrupt one byte in place (same size, same inode: the hard-linked window cache sees it too)."""
    with open(path, "r+b") as handle:
        handle.seek(0, os.SEEK_END)
        offset = int(handle.tell() * offset_fraction)
        handle.seek(offset)
        byte = handle.read(1)
        handle.seek(offset)
        handle.write(bytes([byte[0] ^ 0xFF]))


BLOCK = 512


class TruncatedShard(ValueError):
    """A tar that is not complete: cut inside a header or payload, or missing its end-of-archive blocks."""


def strict_tar_members(data: bytes) -> list[str]:
    """Member names of a complete tar archive, parsed block by block.

    ``tarfile`` accepts an archive cut at a member boundary as a valid shorter one; this does not: every header's
    checksum must hold, every payload must be whole, and the archive must end with the two 512-byte zero blocks
    that a finished writer appends. Raises TruncatedShard otherwise.
    """
    names: list[str] = []
    offset = 0
    while True:
        header = data[offset:offset + BLOCK]
        if len(header) < BLOCK:
            raise TruncatedShard(f"no end-of-archive marker after {len(names)} members ({len(data)} bytes)")
        if header == bytes(BLOCK):
            if data[offset + BLOCK:offset + 2 * BLOCK] != bytes(BLOCK):
                raise TruncatedShard(f"one zero block at {offset}, not the two of an end-of-archive marker")
            return names
        stored = int(header[148:156].strip(b"\0 ") or b"0", 8)
        if stored != sum(header[:148]) + 8 * 32 + sum(header[156:]):
            raise TruncatedShard(f"bad header checksum at byte {offset}")
        name = header[:100].rstrip(b"\0").decode()
        prefix = header[345:500].rstrip(b"\0").decode() if header[257:262] == b"ustar" else ""
        size = int(header[124:136].strip(b"\0 ") or b"0", 8)
        offset += BLOCK + -(-size // BLOCK) * BLOCK
        if offset > len(data):
            raise TruncatedShard(f"member {name} is cut short")
        names.append(f"{prefix}/{name}" if prefix else name)


class ShardWatcher(threading.Thread):
    """Reads every shard visible in ``shards`` again and again while a run goes on. ``seen`` maps each shard
    name to the member names it had the first time; ``bad`` lists every shard that was ever incomplete or that
    changed after it became visible."""

    def __init__(self, shards: Path, interval: float = 0.05):
        super().__init__(daemon=True)
        self.shards, self.interval = Path(shards), interval
        self.bad: list[str] = []
        self.seen: dict[str, list[str]] = {}
        self.reads = 0
        self.stop = threading.Event()
        self._stat: dict[str, tuple[int, int, int]] = {}

    def check(self, path: Path) -> None:
        """Parse ``path`` unless it is the very file (inode, size, mtime) already parsed."""
        try:
            with open(path, "rb") as handle:
                st = os.fstat(handle.fileno())
                signature = (st.st_ino, st.st_size, st.st_mtime_ns)
                if self._stat.get(path.name) == signature:
                    return
                data = handle.read()
        except (FileNotFoundError, IsADirectoryError):
            return
        self._stat[path.name] = signature
        self.reads += 1
        try:
            names = strict_tar_members(data)
        except (TruncatedShard, UnicodeDecodeError) as exc:
            self.bad.append(f"{path.name}: {exc}")
            return
        first = self.seen.setdefault(path.name, names)
        if first != names:
            self.bad.append(f"{path.name}: changed after it became visible ({len(first)} -> {len(names)} members)")

    def run(self) -> None:
        while not self.stop.is_set():
            if self.shards.is_dir():
                for path in sorted(self.shards.iterdir()):
                    self.check(path)
            time.sleep(self.interval)


def prefect_env() -> dict[str, str]:
    """The environment for a CLI subprocess: this session's Prefect server (no ephemeral one per process)."""
    from prefect.settings import get_current_settings

    env = dict(os.environ)
    env["PREFECT_API_URL"] = str(get_current_settings().api.url)
    return env


def kill_when(proc: subprocess.Popen, condition, timeout: float = 600) -> None:
    """SIGKILL ``proc`` as soon as ``condition()`` holds (polled every 20 ms); fail if it never does."""
    import pytest

    deadline = time.time() + timeout
    while time.time() < deadline and proc.poll() is None:
        if condition():
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            return
        time.sleep(0.02)
    stderr = proc.stderr.read().decode(errors="replace")[-3000:] if proc.stderr and proc.poll() is not None else ""
    pytest.fail(f"the kill point was never reached (exit {proc.poll()}) {stderr}")
