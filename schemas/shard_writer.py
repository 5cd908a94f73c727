"""The one shard writer (pack, migrate): atomic, deterministic.

Members go to a temporary name, which is fsynced and renamed into place only when complete, so a reader (or a
killed run) never sees a truncated shard. Member order is the caller's (``member_order`` is the packer's), and
every header is the same whoever writes it: USTAR, mode 0444, mtime 0, no owner.
"""
from __future__ import annotations

import os
import tarfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import BinaryIO

from schemas.tar_reader import BLOCK, CHUNK, RECORD

MEMBER_ORDER = {"checksums.json": 0, "mp4": 1, "degraded.mp4": 2, "graph.json": 3, "meta.json": 4}


def member_order(ext: str) -> tuple[int, str]:
    """The order members of a sample are written in: checksums first, then the videos and documents, then the
    rest by name (a reader can check digests as the members stream)."""
    return MEMBER_ORDER.get(ext, len(MEMBER_ORDER)), ext


def _chunks(handle: BinaryIO) -> Iterator[bytes]:
    while chunk := handle.read(CHUNK):
        yield chunk


class ShardWriter:
    """One shard written atomically: ``add`` members, then ``publish`` (fsync + rename into ``path``) or
    ``discard``. Used as a context manager, an exception discards the partial file. ``bytes`` counts what was
    written so far (headers and padding included)."""

    def __init__(self, path: Path, tmp_dir: Path | None = None) -> None:
        self.path = Path(path)
        self.tmp = Path(tmp_dir or self.path.parent) / f"{self.path.name}.part"
        self.tmp.parent.mkdir(parents=True, exist_ok=True)
        self._handle: BinaryIO | None = open(self.tmp, "wb")
        self.bytes = 0
        self.keys: list[str] = []

    def __enter__(self) -> ShardWriter:
        return self

    def __exit__(self, kind: object, *_: object) -> None:
        if self._handle is not None:
            self.discard()

    def add(self, key: str, members: Iterable[tuple[str, bytes | Path | BinaryIO]]) -> None:
        """One sample: (ext, bytes, a file to copy, or an open binary file read from where it stands), in the order
        given (``member_order`` is the packer's)."""
        for ext, data in members:
            if isinstance(data, (bytes, bytearray, memoryview)):
                self.add_member(f"{key}.{ext}", len(data), [bytes(data)])
            elif isinstance(data, Path):
                with open(data, "rb") as handle:
                    self.add_member(f"{key}.{ext}", os.fstat(handle.fileno()).st_size, _chunks(handle))
            else:
                start = data.tell()
                size = data.seek(0, os.SEEK_END) - start
                data.seek(start)
                self.add_member(f"{key}.{ext}", size, _chunks(data))
        self.keys.append(key)

    def add_member(self, name: str, size: int, chunks: Iterable[bytes]) -> None:
        """One member of ``size`` bytes from ``chunks`` (which must hold exactly that many)."""
        assert self._handle is not None, "the shard was already published or discarded"
        info = tarfile.TarInfo(name)
        info.size, info.mode, info.mtime, info.type = size, 0o444, 0, tarfile.REGTYPE
        self._write(info.tobuf(format=tarfile.USTAR_FORMAT, encoding="utf-8", errors="strict"))
        written = 0
        for chunk in chunks:
            written += len(chunk)
            self._write(chunk)
        if written != size:
            raise ValueError(f"member {name}: {written} bytes written, its header says {size}")
        self._write(b"\0" * (-size % BLOCK))

    def _write(self, data: bytes) -> None:
        assert self._handle is not None
        self._handle.write(data)
        self.bytes += len(data)

    def publish(self) -> int:
        """End the archive, fsync it and rename it into place (then fsync the folder); returns its size."""
        assert self._handle is not None, "the shard was already published or discarded"
        try:
            self._write(b"\0" * (2 * BLOCK))
            self._write(b"\0" * (-self.bytes % RECORD))
            self._handle.flush()
            os.fsync(self._handle.fileno())
            self._handle.close()
            self._handle = None
            os.replace(self.tmp, self.path)
        except BaseException:
            self.discard()
            raise
        folder = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(folder)
        finally:
            os.close(folder)
        return self.bytes

    def discard(self) -> None:
        """Drop the partial shard (never visible under its final name)."""
        if self._handle is not None:
            try:
                self._handle.close()
            except OSError:
                pass
            self._handle = None
        self.tmp.unlink(missing_ok=True)
