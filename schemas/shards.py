"""The one shard reader: validate, migrate, previews and pack all read shards through here (and write them with
``schemas.shard_writer``).

Reading assumes nothing about who wrote the shard. Headers come from ``schemas.tar_reader`` (extended headers over
64 KiB refused unread, data streamed in bounded chunks); here members are grouped into samples by key, as
webdataset does. Link, device, FIFO, directory and sparse members, absolute or ``..`` names, members over their
entry's cap, duplicates and members past the 64th of a sample are reported by name and never read. Memory is
bounded by one chunk plus one extended header, whatever the shard holds.
"""
from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from schemas.reader_checks import DUPLICATE_MEMBER, MEMBER_COUNT, MEMBER_SIZE, Refusal
from schemas.sample import ENTRIES, JSON_MAX_BYTES, UNKNOWN_MAX_BYTES
from schemas.tar_reader import BLOCK, CHUNK, RECORD, ShardReader, ShardReadError, Header, printable

__all__ = ["BLOCK", "CHUNK", "RECORD", "Finding", "Member", "SampleStream", "ShardReadError", "printable",
           "raw_samples", "read_sample", "read_shard", "shard_keys"]

MAX_MEMBERS_PER_SAMPLE = 64  # a sample has at most 13 entries today


def entry_cap(ext: str) -> int:
    """The most bytes a member of this entry may hold; larger ones are reported from their header, never read."""
    if ext in ENTRIES:
        return ENTRIES[ext].max_bytes
    return JSON_MAX_BYTES if ext.endswith(".json") or ext == "json" else UNKNOWN_MAX_BYTES


def name_problem(name: str) -> str | None:
    if name.startswith("/") or (len(name) > 1 and name[1] == ":"):
        return "absolute member name (not read)"
    parts = name.replace("\\", "/").split("/")
    if ".." in parts:
        return "member name escapes the archive with '..' (not read)"
    if len(parts) > 1:
        return "member name has a directory part; samples are flat (not read)"
    if name.startswith("."):
        return "member name has no key before its extension (not read)"
    if "\x00" in name or not name.isprintable():
        return "member name has control characters (not read)"
    return None


@dataclass(frozen=True)
class Finding:
    """Something the reader refused or found, by sample key (or by member name when there is no key)."""

    key: str
    problem: str


@dataclass
class Member:
    """One regular member of a sample, its data not yet read: ``chunks()`` streams it, ``read()`` returns it."""

    key: str
    ext: str
    size: int
    _reader: ShardReader = field(repr=False)
    _header: Header = field(repr=False)

    def chunks(self) -> Iterator[bytes]:
        return self._reader.chunks(self._header)

    def read(self) -> bytes:
        return b"".join(self.chunks())


class SampleStream:
    """The members of one key, streamed in shard order. ``refused`` ({entry: why}) fills in as they are read;
    ``broken`` says why the shard could not be read past this sample's members."""

    def __init__(self, key: str, group: _Grouper) -> None:
        self.key = key
        self.refused: dict[str, str] = {}
        self.unlisted = 0  # refusals past MAX_MEMBERS_PER_SAMPLE, counted only (memory stays bounded)
        self.broken: str | None = None
        self._group = group
        self._seen: set[str] = set()
        self._iter: Iterator[Member] | None = None

    def members(self) -> Iterator[Member]:
        if self._iter is None:
            self._iter = self._members()
        return self._iter

    def _refusal(self, ext: str, header: Header) -> str | None:
        if header.refused is not None:
            return header.refused
        if header.size > entry_cap(ext):
            return Refusal(MEMBER_SIZE, f"{header.size} bytes, more than the {entry_cap(ext)} its entry allows "
                           "(not read)")
        if len(self._seen) + len(self.refused) >= MAX_MEMBERS_PER_SAMPLE:
            return Refusal(MEMBER_COUNT, f"more than {MAX_MEMBERS_PER_SAMPLE} members in one sample (not read)")
        if ext in self._seen or ext in self.refused:
            return Refusal(DUPLICATE_MEMBER, "duplicate member in this sample (not read)")
        return None

    def _members(self) -> Iterator[Member]:
        group = self._group
        while (header := group.next) is not None:
            problem = name_problem(header.name)
            if problem is not None:
                group.stray.append(Finding(printable(header.name), problem))
                if len(group.stray) > MAX_MEMBERS_PER_SAMPLE:
                    group.stray[-1:] = []
                    group.unlisted += 1
            else:
                key, _, ext = header.name.partition(".")
                if key != self.key:
                    return
                ext = ext or "(no extension)"
                why = self._refusal(ext, header)
                if why is not None and (ext in self.refused or len(self.refused) < MAX_MEMBERS_PER_SAMPLE):
                    self.refused.setdefault(ext, why)
                elif why is not None:
                    self.unlisted += 1
                else:
                    self._seen.add(ext)
                    yield Member(self.key, ext, header.size, group.reader, header)
            group.advance()
            if group.next is None and group.reader.end is not None:
                self.broken, group.reader.end = group.reader.end, None


class _Grouper:
    def __init__(self, reader: ShardReader) -> None:
        self.reader = reader
        self.headers = reader.headers()
        self.next: Header | None = None
        self.stray: list[Finding] = []  # badly named members met inside a sample, reported after it
        self.unlisted = 0

    def advance(self) -> None:
        self.next = next(self.headers, None)

    def samples(self) -> Iterator[SampleStream | Finding]:
        self.advance()
        while self.next is not None:
            problem = name_problem(self.next.name)
            if problem is not None:
                yield Finding(printable(self.next.name), problem)
                self.advance()
                continue
            stream = SampleStream(self.next.name.partition(".")[0], self)
            yield stream
            for _ in stream.members():  # what the consumer left is skipped
                pass
            yield from self.stray
            if self.unlisted:
                yield Finding("-", f"{self.unlisted} more badly named members (not listed)")
            self.stray.clear()
            self.unlisted = 0
        for problem in (self.reader.end, self.reader.hidden):
            if problem is not None:
                yield Finding("-", problem)


def _open_shard(path: Path) -> tuple[BinaryIO | None, str]:
    if not stat.S_ISREG(os.stat(path).st_mode):
        return None, "not a regular file (not read)"
    handle = open(path, "rb")
    if handle.read(2) == b"\x1f\x8b":
        handle.close()
        return None, "a gzip file, not a tar (compressed shards are not opened)"
    handle.seek(0)
    return handle, ""


def read_shard(source: Path | BinaryIO) -> Iterator[SampleStream | Finding]:
    """Samples (members grouped by consecutive key, as webdataset does) and findings that belong to no sample.

    Read each sample's ``members()`` before asking for the next item: what is left unread is skipped. A member's
    ``chunks()`` raises ShardReadError when the data is shorter than its header said (a shard changed or cut
    while it is read; sizes are checked against the file first)."""
    if not isinstance(source, (str, Path)):
        yield from _Grouper(ShardReader(source)).samples()
        return
    handle, why = _open_shard(Path(source))
    if handle is None:
        yield Finding("-", why)
        return
    with handle:
        yield from _Grouper(ShardReader(handle, os.fstat(handle.fileno()).st_size)).samples()


def _raw(stream: SampleStream) -> dict[str, object]:
    raw: dict[str, object] = {"__key__": stream.key, **{m.ext: m.read() for m in stream.members()}}
    problems = [f"{ext}: {why}" for ext, why in stream.refused.items()]
    if stream.broken:
        problems.append(f"the shard breaks after this sample's members: {stream.broken}")
    return {**raw, "__problems__": problems, "__skipped__": list(stream.refused)}


def raw_samples(source: Path | BinaryIO) -> Iterator[dict[str, object]]:
    """Each sample as a webdataset-style dict ({"__key__": key, ext: bytes, ...}; refused members listed in
    ``__problems__`` as "ext: why" and their entries in ``__skipped__``). The whole sample is in memory: for
    trusted, small shards (tests, previews); validate and migrate stream instead."""
    return (_raw(item) for item in read_shard(source) if isinstance(item, SampleStream))


def read_sample(source: Path | BinaryIO, key: str) -> dict[str, bytes]:
    """One sample's members by key ({"__key__": key, ext: bytes}); other samples are skipped unread. KeyError when
    the shard has no such key."""
    for item in read_shard(source):
        if isinstance(item, SampleStream) and item.key == key:
            return {k: v for k, v in _raw(item).items() if not k.startswith("__") or k == "__key__"}  # type: ignore
    raise KeyError(f"no sample '{key}' in {source}")


def shard_keys(source: Path | BinaryIO) -> dict[str, list[str]]:
    """key -> member extensions of one shard, from its headers alone (no member data is read)."""
    members: dict[str, list[str]] = {}
    with open(source, "rb") if isinstance(source, (str, Path)) else nullcontext(source) as handle:
        for header in ShardReader(handle).headers():
            key, _, ext = header.name.partition(".")
            members.setdefault(key, []).append(ext)
    return members

