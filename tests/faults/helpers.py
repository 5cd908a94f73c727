"""What the fault suite shares: one uninterrupted reference run, and comparisons of outputs against it.

The reference is computed once per test session (in-process, against the session Prefect server) and reused by
every fault test and by tests/test_ray_ingest.py, so the suite pays for the clean run only once.
"""
from __future__ import annotations

import json
import os
import shutil
import tarfile
from pathlib import Path
from typing import Any

from tasks.manifest import read_manifest

CLIPS = 6
CONFIG_TEXT = (  # many small shards: more moments for a fault to hit; x264 ultrafast: the suite stays quick
    "pack:\n  max_shard_samples: 1\nencode:\n  preset: ultrafast\n")
ROW_IGNORED = ("run_id", "seconds")  # differ between runs by nature

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
                member = contents.setdefault(key, {})
                assert ext not in member, f"duplicate member {info.name} (key packed twice)"
                member[ext] = data
    return contents


def shards_files(out: Path) -> list[str]:
    return sorted(p.name for p in (Path(out) / "shards").iterdir())


def assert_same_output(out: Path, reference: Path) -> None:
    """The run at ``out`` produced what the reference did: rows, keys, member bytes; shards/ holds only tars."""
    assert manifest_rows(out) == manifest_rows(reference)
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
