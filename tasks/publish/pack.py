"""Packing staged samples into WebDataset shards, bounded by bytes and by sample count.

A shard is written under OUT/.tmp and renamed into OUT/shards/ only when complete and fsynced, so a reader (or
a killed run) never sees a truncated shard. The published shards are the truth about what is packed: a rerun
lists their members and packs only keys that are in none of them, so no key is ever packed twice. With OUT on
object storage (engine/store_s3.py) a finished shard is then published with one atomic upload, and the store's
shards are the truth.
"""
from __future__ import annotations

import errno
import os
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from engine.ledger import published_index
from engine.run import RunContext
from schemas.shard_writer import ShardWriter, member_order

SHARD_RE = re.compile(r"^shard-(\d{6})\.tar$")
_TAR_OVERHEAD = 1024  # header + padding per member, generously


def published_shards(run: RunContext) -> dict[str, int]:
    """name -> bytes of the run's published shards (the store's, when OUT is on object storage)."""
    return run.store.shard_sizes()


def shard_file(run: RunContext, name: str) -> Path:
    """A published shard as a local file (fetched from the store when this machine lacks it)."""
    return run.store.local_shard(run, name)


@dataclass
class PackResult:
    key_to_shard: dict[str, str]
    new_shards: list[str] = field(default_factory=list)
    shard_bytes: dict[str, int] = field(default_factory=dict)


def _sample_files(directory: Path) -> list[Path]:
    return sorted((p for p in directory.iterdir() if p.is_file()), key=lambda p: member_order(p.name))


class _Shard:
    """One shard being packed: the one shard writer (schemas/shard_writer.py) under OUT/.tmp, the sample count and
    the byte estimate the pack limits use, and what a full disk means to the user."""

    def __init__(self, run: RunContext, number: int):
        self.run = run
        self.name = f"shard-{number:06d}.tar"
        self.writer = ShardWriter(run.shards / self.name, run.tmp)
        self.keys = self.writer.keys
        self.bytes = 0

    def add(self, key: str, files: list[Path]) -> None:
        try:
            self.writer.add(key, [(path.name, path) for path in files])
        except OSError as exc:
            raise self._failed(exc) from exc
        self.bytes += sum(path.stat().st_size + _TAR_OVERHEAD for path in files)

    def _failed(self, exc: OSError) -> OSError:
        """Drop the partial shard (never visible under shards/); say what to do when the disk is full."""
        self.writer.discard()
        if exc.errno not in (errno.ENOSPC, errno.EDQUOT):
            return exc
        return OSError(exc.errno, f"{os.strerror(exc.errno)} while writing {self.name} under {self.run.out}: the "
                                  "shards already published are complete; free some space and rerun the same "
                                  "command (finished clips are kept)")

    def publish(self) -> int:
        try:
            size = self.writer.publish()
        except OSError as exc:
            raise self._failed(exc) from exc
        self.run.store.publish_shard(self.run.shards / self.name, self.keys)  # OUT on object storage: one upload
        return size


def pack_shards(run: RunContext, keys: list[str]) -> PackResult:
    """Pack the staged samples of ``keys`` (in order) that no published shard holds yet."""
    pack = run.config.pack
    index = published_index(run)
    numbers = [int(m.group(1)) for name in published_shards(run) if (m := SHARD_RE.match(name))]
    next_number = max(numbers, default=-1) + 1
    result = PackResult(dict(index))
    writer: _Shard | None = None
    for key in keys:
        if key in index:
            continue
        directory = run.samples / key
        files = _sample_files(directory)
        size = sum(p.stat().st_size + _TAR_OVERHEAD for p in files)
        if writer and (writer.bytes + size > pack.max_shard_bytes or len(writer.keys) >= pack.max_shard_samples):
            result.shard_bytes[writer.name] = writer.publish()
            result.new_shards.append(writer.name)
            writer = None
        if writer is None:
            writer = _Shard(run, next_number)
            next_number += 1
        writer.add(key, files)
        result.key_to_shard[key] = writer.name
    if writer is not None:
        result.shard_bytes[writer.name] = writer.publish()
        result.new_shards.append(writer.name)
    for key in keys:  # staged copies of packed samples are no longer needed
        if key in result.key_to_shard:
            shutil.rmtree(run.samples / key, ignore_errors=True)
    run.store.drop_samples(result.key_to_shard)
    return result
