"""The output folder of a run: its layout, its identity, its lock, and atomic file writes.

OUT/
  run.json, config.yaml        identity: run id, config and config hash (a rerun must use the same config)
  shards/shard-NNNNNN.tar      published shards (only complete ones ever appear here)
  manifest.parquet             one row per candidate window / input
  report.md, metrics.json      the run summary
  previews/                    contact sheets
  cache/clips/<clip>.json      per-clip ledger: a clip with a valid ledger is never redone
  cache/windows/<window>/      normalised clean clip + filter/geometry results (what regenerate reuses)
  cache/samples/<key>/         packed-sample members waiting for (or already in) a shard
  .tmp/                        partial files; nothing here is ever read as output
OUT may be s3://bucket/prefix: this layout then lives in a local working folder mirrored to the bucket
(engine/store.py).
"""
from __future__ import annotations

import datetime as dt
import fcntl
import hashlib
import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import yaml

from schemas.config import Config
from schemas.config_section import stable_hash


def atomic_write_bytes(path: Path, data: bytes, tmp_dir: Path | None = None) -> None:
    """Write to a temporary file, fsync, then rename: readers see the old file or the whole new one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp_dir = tmp_dir or path.parent
    tmp_dir.mkdir(parents=True, exist_ok=True)
    tmp = tmp_dir / f".{path.name}.{os.getpid()}.part"
    with open(tmp, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def atomic_write_json(path: Path, obj: Any) -> None:
    atomic_write_bytes(path, (json.dumps(obj, indent=1, sort_keys=True) + "\n").encode())


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class RunLockedError(RuntimeError):
    pass


class ConfigMismatchError(RuntimeError):
    pass


# The sections a clip's cached work depends on; changing any other section (pack, ray, pexels) reuses it.
CLIP_SECTIONS = ("normalise", "prefilter", "vlm", "geometry", "augment", "encode", "synthetic", "sources", "seed")


@dataclass
class RunContext:
    out: Path
    config: Config
    run_id: str
    clip_hash: str  # hash of CLIP_SECTIONS: key of every per-clip cache entry
    parent: Path | None = None  # regenerate: the run whose cache is reused
    kind: str = "ingest"
    _lock: Any = field(default=None, repr=False)
    store: Any = field(default=None, repr=False)  # engine.store.OutputStore: where OUT lives (local or s3://)

    @property
    def location(self) -> str:
        """OUT as the user gave it: the object-store URL, or the folder."""
        return self.store.url if self.store is not None else str(self.out)

    @property
    def shards(self) -> Path:
        return self.out / "shards"

    @property
    def tmp(self) -> Path:
        return self.out / ".tmp"

    @property
    def clips(self) -> Path:
        return self.out / "cache" / "clips"

    @property
    def windows(self) -> Path:
        return self.out / "cache" / "windows"

    @property
    def samples(self) -> Path:
        return self.out / "cache" / "samples"

    @property
    def previews(self) -> Path:
        return self.out / "previews"

    def release(self) -> None:
        if self._lock is not None:
            self._lock.close()
            self._lock = None


def _clip_hash(config: Config) -> str:
    data = config.model_dump(mode="json")
    return stable_hash({k: data[k] for k in CLIP_SECTIONS}, chars=16, compact=False)


def lock_folder(out: Path, shared: bool = False) -> IO[str] | None:
    """Hold OUT's lock file: exclusive for the one process writing it, shared for those reading it (regenerate's
    parent). None when another process holds it the other way."""
    handle = open(out / ".lock", "a" if shared else "w")
    try:
        fcntl.flock(handle, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        return None
    return handle


def open_run(out: Path, config: Config, kind: str = "ingest", parent: Path | None = None,
             sync: Callable[[Path], None] | None = None) -> RunContext:
    """Create or resume OUT. Refuses a second live process on the same OUT and a changed config. ``sync``
    (engine.store: OUT on object storage) brings the folder in line with the store under the lock."""
    out = Path(out).resolve()
    for sub in ("shards", ".tmp", "cache/clips", "cache/windows", "cache/samples", "previews"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    lock = lock_folder(out)
    if lock is None:
        raise RunLockedError(f"another remind-curate process is writing {out}")
    for stale in (out / ".tmp").iterdir():  # partial files of a killed run: never published, safe to drop
        stale.unlink() if stale.is_file() else None
    if sync is not None:
        try:
            sync(out)
        except BaseException:
            lock.close()
            raise
    record_path = out / "run.json"
    clip_hash = _clip_hash(config)
    if record_path.exists():
        record = json.loads(record_path.read_text())
        if record["clip_hash"] != clip_hash:
            lock.close()
            raise ConfigMismatchError(
                f"{out} was produced with a different configuration (clip hash {record['clip_hash']}, now "
                f"{clip_hash}); use a new --out, or `remind-curate regenerate --from {out}` for new augmentations")
        record["resumed"] = record.get("resumed", 0) + 1
    else:
        now = dt.datetime.now(dt.timezone.utc)
        record = {"run_id": f"{kind}-{now:%Y%m%dT%H%M%SZ}-{clip_hash[:8]}", "kind": kind,
                  "created_at": now.isoformat(), "clip_hash": clip_hash, "config_hash": config.config_hash,
                  "parent": str(parent) if parent else None, "resumed": 0}
    atomic_write_json(record_path, record)
    atomic_write_bytes(out / "config.yaml", yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False).encode())
    from engine.store import LocalStore

    return RunContext(out, config, record["run_id"], clip_hash, parent, record.get("kind", kind), lock,
                      store=LocalStore(str(out), out))
