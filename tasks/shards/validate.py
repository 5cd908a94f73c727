"""`remind-curate validate PATH`: check every sample of a shard, a folder of shards or an ingest output.

Shards may come from anyone, so reading never extracts, executes or follows anything: member headers are read
one at a time (memory stays flat however many members), link, device, FIFO, directory and sparse members and
absolute or ``..`` names are reported by name and never read, a member larger than its entry allows is skipped
unread, and a shard that ends without its end-of-archive blocks (cut, or a corrupt header that makes tarfile
stop early) is reported. Each finding is one line: ``shard: key: problem``.
"""
from __future__ import annotations

import os
import stat
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from schemas.sample import ENTRIES, UNKNOWN_MAX_BYTES
from schemas.validation import check_sample

MAX_MEMBERS_PER_SAMPLE = 64  # a sample has at most 12 entries today
_BLOCK = tarfile.BLOCKSIZE


@dataclass(frozen=True)
class Problem:
    shard: str
    key: str
    problem: str

    def __str__(self) -> str:
        return f"{self.shard}: {self.key}: {self.problem}"


@dataclass
class ValidationReport:
    shards: int
    samples: int
    problems: list[Problem]
    keys: list[str] = field(default_factory=list)  # every sample key checked, in shard order

    @property
    def ok(self) -> bool:
        return not self.problems and self.samples > 0

    def passed(self) -> set[str]:
        """Keys checked with no problem reported against them."""
        return set(self.keys) - {p.key for p in self.problems}


def printable(name: str, limit: int = 120) -> str:
    """A member name safe to print on one line (a hostile name cannot forge report lines)."""
    text = name.encode("unicode_escape", "backslashreplace").decode("ascii")
    return text if len(text) <= limit else text[:limit] + "..."


def shard_paths(path: Path) -> list[Path]:
    path = Path(path)
    if path.is_file():
        return [path]
    if (path / "shards").is_dir():
        path = path / "shards"
    if not path.is_dir():
        raise FileNotFoundError(f"no shard, shard folder or ingest output at {path}")
    return sorted(path.glob("*.tar"))


def _kind(info: tarfile.TarInfo) -> str | None:
    """Why a member is not read, or None for a plain regular file."""
    if info.issym():
        return f"symlink to '{printable(info.linkname)}' (not followed)"
    if info.islnk():
        return f"hard link to '{printable(info.linkname)}' (not followed)"
    if info.ischr():
        return "character device member (not read)"
    if info.isblk():
        return "block device member (not read)"
    if info.isfifo():
        return "FIFO member (not read)"
    if info.isdir():
        return "directory member (samples are flat files)"
    if info.issparse():
        return "sparse member (not read)"
    if not info.isreg():
        return f"member of unsupported tar type {info.type!r} (not read)"
    return None


def _name_problem(name: str) -> str | None:
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


def _cap(ext: str) -> int:
    spec = ENTRIES.get(ext)
    return spec.max_bytes if spec is not None else UNKNOWN_MAX_BYTES


def _end_problem(handle: BinaryIO, offset: int, size: int) -> str | None:
    """tarfile stops quietly at a corrupt header or a cut; a complete archive ends with two zero blocks."""
    handle.seek(offset)
    tail = handle.read(2 * _BLOCK)
    if len(tail) == 2 * _BLOCK and not tail.strip(b"\0"):
        return None
    if tail[:_BLOCK].strip(b"\0"):
        return (f"unreadable member header at byte {offset} (corrupt or not a tar header): the last "
                f"{size - offset} bytes of the shard were not read")
    return f"the shard ends without its end-of-archive blocks at byte {size}: it was cut short"


class _Group:
    """The members of one key while they are being read."""

    def __init__(self, key: str) -> None:
        self.raw: dict[str, Any] = {"__key__": key, "__problems__": [], "__skipped__": []}
        self.count = 0

    def note(self, ext: str, problem: str) -> None:
        self.raw["__problems__"].append(f"{ext}: {problem}")
        self.raw["__skipped__"].append(ext)


def read_shard(shard: Path) -> Iterator[dict[str, Any] | Problem]:
    """Raw samples (grouped by consecutive key, as webdataset does) and findings that belong to no sample.

    Each raw sample carries ``__problems__`` (members refused, by entry) and ``__skipped__`` (their entries).
    """
    name = shard.name
    mode = os.stat(shard).st_mode
    if not stat.S_ISREG(mode):
        yield Problem(name, "-", "not a regular file (not read)")
        return
    with open(shard, "rb") as handle:
        size = os.fstat(handle.fileno()).st_size
        group: _Group | None = None
        try:
            tar = tarfile.open(fileobj=handle, mode="r:")
            while True:
                info = tar.next()
                tar.members.clear()  # tarfile keeps every header it read: memory would grow with the shard
                if info is None:
                    break
                bad_name = _name_problem(info.name)
                if bad_name is not None:
                    yield Problem(name, printable(info.name), bad_name)
                    continue
                key, _, ext = info.name.partition(".")
                ext = ext or "(no extension)"
                if group is not None and group.raw["__key__"] != key:
                    yield group.raw
                    group = None
                group = group or _Group(key)
                group.count += 1
                refused = _kind(info)
                if refused is None and info.size > _cap(ext):
                    refused = f"{info.size} bytes, more than the {_cap(ext)} its entry allows (not read)"
                if refused is None and group.count > MAX_MEMBERS_PER_SAMPLE:
                    refused = f"more than {MAX_MEMBERS_PER_SAMPLE} members in one sample (not read)"
                if refused is None and ext in group.raw:
                    refused = "duplicate member in this sample (not read)"
                if refused is not None:
                    group.note(ext, refused)
                    continue
                handle.seek(info.offset_data)
                data = handle.read(info.size)
                if len(data) != info.size:
                    raise tarfile.ReadError(f"member {printable(info.name)} is cut short")
                group.raw[ext] = data
            end = _end_problem(handle, tar.offset, size)
        except (tarfile.TarError, EOFError, OSError, UnicodeError, ValueError) as exc:
            end = f"unreadable shard: {type(exc).__name__}: {exc}"
        if group is not None:
            if end is not None:  # the last sample read may be the one that was cut
                group.raw["__problems__"].append(f"the shard breaks after this sample's members: {end}")
            yield group.raw
        elif end is not None:
            yield Problem(name, "-", end)


def iter_samples(shard: Path) -> Iterator[dict[str, Any]]:
    """The raw samples of a shard (findings that belong to no sample are dropped: use ``read_shard``)."""
    for item in read_shard(Path(shard)):
        if isinstance(item, dict):
            yield item


def _check(raw: dict[str, Any], decode_video: bool) -> list[str]:
    try:
        return check_sample(raw, decode_video)
    except Exception as exc:  # noqa: BLE001 - a validator bug on hostile input is a finding, never a crash
        return [f"internal error while checking: {type(exc).__name__}: {exc}"]


def validate_path(path: Path, decode_video: bool = True) -> ValidationReport:
    shards = shard_paths(path)
    problems: list[Problem] = []
    seen: dict[str, str] = {}
    keys: list[str] = []
    if not shards:
        problems.append(Problem(str(path), "-", "no .tar shard found"))
    for shard in shards:
        for item in read_shard(shard):
            if isinstance(item, Problem):
                problems.append(item)
                continue
            key = printable(str(item["__key__"]))
            keys.append(key)
            if key in seen:
                problems.append(Problem(shard.name, key, f"duplicate key (also in {seen[key]})"))
            seen[key] = shard.name
            problems += [Problem(shard.name, key, p) for p in _check(item, decode_video)]
    return ValidationReport(len(shards), len(keys), problems, keys)
