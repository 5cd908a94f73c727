"""What the bucket says is finished, readable in a few requests: the compacted ledger and the shard index.

A resumed run must learn which clips are finished and which keys are published. Listing one object per clip and
reading every shard's headers costs one request per 1,000 clips plus one GET per clip on an empty working folder
(87 s for 10,000 clips on moto). So the lease holder keeps the bucket's ledger compact, as Delta Lake keeps its
log with checkpoints:

- workers commit one object per clip, ``cache/clips/<clip>.json``, as before;
- every ``REMIND_CURATE_LEDGER_FOLD_S`` seconds of a run (120) and before packing, the driver folds every such
  object into ``cache/ledger/part-NNNNNN.json.gz`` (clip id -> the entry file's exact text: the previous part's
  entries plus the objects), uploads it whole, then deletes the previous part and the folded objects. A reader takes the parts in number order, then the objects: the later wins. A crash
  between upload and delete leaves both, and they agree;
- each published shard's key list goes to ``cache/shard-index/<shard>.json`` with the shard object's size and ETag,
  so a fresh machine reads a few small objects, not every shard's headers.

The local working folder keeps the plain layout (``cache/clips/<clip>.json``): entries are written out of the part
there, so the ledger checks (engine.ledger) read files as they do for a local OUT.
"""
from __future__ import annotations

import gzip
import json
import logging
import os
import re
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)
FOLD_EVERY_ENV = "REMIND_CURATE_LEDGER_FOLD_S"
PARTS = "cache/ledger"
CLIPS = "cache/clips"
SHARD_INDEX = "cache/shard-index"
_PART = re.compile(r"^part-(\d{6})\.json\.gz$")


def fold_every_s() -> float:
    """Seconds between folds while a run goes (``REMIND_CURATE_LEDGER_FOLD_S``, default 120; 0: after every clip)."""
    text = os.environ.get(FOLD_EVERY_ENV, "120")
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value >= 0:
        raise ValueError(f"{FOLD_EVERY_ENV} must be a number of seconds >= 0, got {text!r}")
    return value


def part_number(rel: str) -> int | None:
    found = _PART.match(rel.rsplit("/", 1)[-1])
    return int(found.group(1)) if found else None


def encode_part(entries: dict[str, str]) -> bytes:
    return gzip.compress(json.dumps(entries, sort_keys=True).encode(), compresslevel=6, mtime=0)


def decode_part(data: bytes) -> dict[str, str]:
    entries = json.loads(gzip.decompress(data))
    if not isinstance(entries, dict) or not all(isinstance(v, str) for v in entries.values()):
        raise ValueError("not a ledger part (clip id -> entry text)")
    return entries


def clip_of(rel: str) -> str | None:
    """``cache/clips/<clip>.json`` -> clip id (None for anything else)."""
    name = rel.rsplit("/", 1)[-1]
    return name[:-5] if rel.startswith(f"{CLIPS}/") and name.endswith(".json") else None


def _write_if_changed(path: Path, text: str, tmp: Path) -> None:
    """The working folder is a cache of the bucket: rename without fsync (a torn file differs and is rewritten)."""
    data = text.encode()
    try:
        if path.read_bytes() == data:
            return
    except FileNotFoundError:
        pass
    staged = tmp / f".{path.name}.{os.getpid()}.part"
    staged.write_bytes(data)
    os.replace(staged, path)


class BucketLedger:
    """The ledger of an S3Store's bucket (engine.store_s3) and its local working copy."""

    def __init__(self, store: Any) -> None:
        self.store = store
        self.local: Path = store.local

    def pull(self, drop_extra: bool) -> tuple[dict[str, str], dict[str, dict[str, Any]]]:
        """Bring ``cache/clips/`` of the working folder in line with the bucket's ledger. ``drop_extra``: a local
        entry the bucket has neither folded nor as an object is removed (that clip is redone). Returns the folded
        entries still current and the clip objects' listing."""
        parts = self.store._mirror(PARTS, drop_extra=True)
        objects = self.store._mirror(CLIPS, drop_extra=False)
        folded: dict[str, str] = {}
        for rel in sorted(parts, key=lambda r: part_number(r) or -1):
            if part_number(rel) is not None:
                try:
                    folded.update(decode_part((self.local / rel).read_bytes()))
                except (OSError, ValueError) as exc:
                    raise self.store._fail(f"reading {rel} of", exc) from None
        in_objects = {clip_of(rel) for rel in objects}
        for clip in in_objects:
            folded.pop(clip, None)
        clips, tmp = self.local / CLIPS, self.local / ".tmp"
        clips.mkdir(parents=True, exist_ok=True)
        tmp.mkdir(parents=True, exist_ok=True)
        for clip, text in folded.items():
            _write_if_changed(clips / f"{clip}.json", text, tmp)
        if drop_extra:
            for path in clips.glob("*.json"):
                if path.stem not in folded and path.stem not in in_objects:
                    path.unlink()
        return folded, objects

    def compact(self, folded: dict[str, str], objects: dict[str, dict[str, Any]]) -> None:
        """Fold the clip objects (their local copies match them: ``pull`` just mirrored them) into a new part; then
        remove the previous parts and the folded objects. Only the lease holder calls this."""
        if not objects:
            return
        self.store._writable()
        entries = dict(folded)
        for rel in objects:
            entries[clip_of(rel)] = (self.local / rel).read_text()
        old = sorted(p for p in (self.local / PARTS).glob("part-*.json.gz") if part_number(p.name) is not None)
        number = max((part_number(p.name) for p in old), default=0) + 1
        part = self.local / PARTS / f"part-{number:06d}.json.gz"
        part.parent.mkdir(parents=True, exist_ok=True)
        part.write_bytes(encode_part(entries))
        self.store.put([part])
        stale = [self.store._remote(p.relative_to(self.local).as_posix()) for p in old]
        stale += [self.store._remote(rel) for rel in sorted(objects)]
        try:
            self.store.fs.rm(stale)
        except Exception as exc:  # noqa: BLE001 - left behind, they agree with the part; the next run retries
            raise self.store._fail("removing folded ledger objects from", exc) from None
        for path in old:
            path.unlink(missing_ok=True)

    def fold_if_due(self, since: float) -> float:
        """While the run goes (the lease holder): fold the clip objects committed so far when ``fold_every_s``
        has passed ``since`` (time.monotonic), so a run killed mid-way resumes from a compact ledger. A failure
        here is logged and left to the next fold: the objects are still the ledger. Returns the last fold's time."""
        now = time.monotonic()
        if now - since < fold_every_s():
            return since
        try:
            self.compact(*self.pull(drop_extra=False))
        except OSError as exc:
            log.warning("folding the ledger of %s failed (%s); the clip objects stand", self.store.url, exc)
        return time.monotonic()

    # -- the shard index -------------------------------------------------------------------------------------------
    def index_path(self, shard: str) -> Path:
        return self.local / SHARD_INDEX / f"{shard}.json"

    def remember(self, shard: str, tag: str, keys: Iterable[str], upload: bool) -> None:
        path = self.index_path(shard)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"object": tag, "keys": sorted(set(keys))}))
        if upload:
            self.store.put([path])

    def known_keys(self, shard: str, tag: str) -> list[str] | None:
        """The shard's keys from its index, when the index describes this very object (size and ETag)."""
        path = self.index_path(shard)
        try:
            entry = json.loads(path.read_text())
        except (OSError, ValueError):
            return None
        return entry.get("keys") if entry.get("object") == tag else None

    def fetch_indexes(self, shards: list[str]) -> None:
        """Download the bucket's index of each shard this working folder has none of (one batch of GETs)."""
        if shards:
            listed = self.store.listing(SHARD_INDEX)
            self.store.get([f"{SHARD_INDEX}/{s}.json" for s in shards if f"{SHARD_INDEX}/{s}.json" in listed])
