"""Tar headers of a shard nobody vouched for, parsed here rather than by ``tarfile`` (which reads a pax or GNU
long-name header whole, and keeps every header it saw).

An extended header over ``MAX_EXTENDED_HEADER`` bytes is refused from its size field, before it is read; one within
the limit is applied to the member it precedes (name, link, size). Member data is handed out in chunks of at most
``CHUNK`` bytes, and whatever the consumer does not read is skipped (a seek). So memory is one chunk plus one
extended header, and time is linear in the bytes read. ``end`` says why a shard could not be read to its end;
``hidden`` names data after a proper end that tar readers would not see.
"""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

from schemas.reader_checks import (EXTENDED_HEADER_MALFORMED, EXTENDED_HEADER_SIZE, MEMBER_TYPE, PAX_SIZE,
                                    Refusal)

BLOCK = 512
CHUNK = 1 << 20
MAX_EXTENDED_HEADER = 64 << 10  # pax and GNU long-name headers; real ones are under 1 KiB
RECORD = 20 * BLOCK  # tar pads the archive to whole records
_HIGH = bytes(range(128, 256))  # bytes that count negative in a signed header checksum
_REGULAR, _EXTENDED = (b"0", b"\0", b"7"), (b"x", b"g", b"L", b"K")
_KINDS = {b"1": "hard link to '{link}' (not followed)", b"2": "symlink to '{link}' (not followed)",
          b"3": "character device member (not read)", b"4": "block device member (not read)",
          b"5": "directory member (samples are flat files)", b"6": "FIFO member (not read)",
          b"S": "sparse member (not read)"}


def printable(name: str, limit: int = 120) -> str:
    """A member name safe to print on one line (a hostile name cannot forge report lines)."""
    text = name.encode("unicode_escape", "backslashreplace").decode("ascii")
    return text if len(text) <= limit else text[:limit] + "..."


class ShardReadError(OSError):
    """The shard cannot be read past this point; the message says where and why."""


@dataclass
class Header:
    """One member header, extended headers applied; ``refused`` says why its data must not be read."""

    name: str
    size: int
    kind: bytes
    link: str = ""
    offset: int = 0  # where the data starts
    refused: str | None = None


def _number(field_: bytes) -> int:
    if field_[:1] in (b"\x80", b"\xff"):  # GNU base-256
        if field_[0] == 0xFF:
            raise ValueError("negative number")
        return int.from_bytes(field_[1:], "big")
    text = field_.split(b"\0", 1)[0].strip(b" ")
    if text.translate(None, b"01234567"):
        raise ValueError("not an octal number")
    return int(text or b"0", 8)


def _text(field_: bytes) -> str:
    return field_.split(b"\0", 1)[0].decode("utf-8", "surrogateescape")


def _pax(data: bytes) -> dict[str, str]:
    """Records 'LEN KEY=VALUE\\n' of a pax header (at most MAX_EXTENDED_HEADER bytes: one linear pass)."""
    records, pos = {}, 0
    while pos < len(data) and data[pos:pos + 1] != b"\0":
        space = data.find(b" ", pos, pos + 12)
        length = int(data[pos:space]) if space > pos and data[pos:space].isdigit() else 0
        record = data[pos:pos + length]
        if length <= space - pos or len(record) != length or not record.endswith(b"\n") or b"=" not in record:
            raise ValueError("malformed pax record")
        key, _, value = record[space - pos + 1:-1].partition(b"=")
        records[key.decode("utf-8", "surrogateescape")] = value.decode("utf-8", "surrogateescape")
        pos += length
    return records


class ShardReader:
    """Member headers of one shard, in order, read once; see the module doc. ``end`` says how the shard ended
    (None: complete)."""

    def __init__(self, handle: BinaryIO, size: int | None = None) -> None:
        self.handle = handle
        self.size = size
        self.pos = 0
        self.end: str | None = None
        self.hidden: str | None = None  # data a tar reader would not see, after a proper end

    def _read(self, count: int) -> bytes:
        data = self.handle.read(count)
        self.pos += len(data)
        return data

    def _goto(self, target: int) -> None:
        if self.handle.seekable():
            self.handle.seek(target)
            self.pos = target
            return
        while self.pos < target and self._read(min(target - self.pos, CHUNK)):
            pass

    def headers(self) -> Iterator[Header]:
        """Each regular-or-refused member header, ``offset`` at its data; extended headers are applied here."""
        overrides: dict[str, str] = {}
        refused: str | None = None
        while True:
            at = self.pos
            block = self._read(BLOCK)
            if len(block) < BLOCK:
                self.end = f"the shard ends without its end-of-archive blocks at byte {at}: it was cut short"
                return
            if not block.strip(b"\0"):
                self._finish(at)
                return
            try:
                header = _parse(block)
            except (ValueError, UnicodeError):
                rest = f"the last {self.size - at} bytes" if self.size is not None else "the rest"
                self.end = (f"unreadable member header at byte {at} (corrupt or not a tar header): {rest} of the "
                            "shard were not read")
                return
            header.offset = self.pos
            if header.kind not in _EXTENDED:  # the extended headers before it name it and may give its size
                header = _apply(header, overrides, refused)
                overrides, refused = {}, None
            if self.size is not None and header.offset + header.size > self.size:
                self.end = (f"member '{printable(header.name)}' is cut short: the shard ends "
                            f"{self.size - header.offset} bytes into its {header.size} bytes")
                return
            following = header.offset + header.size + (-header.size % BLOCK)
            if header.kind in _EXTENDED:
                if header.size > MAX_EXTENDED_HEADER:  # refused from its size: never read
                    refused = Refusal(EXTENDED_HEADER_SIZE, f"extended header ({header.kind.decode()}) of "
                                      f"{header.size} bytes, more than the {MAX_EXTENDED_HEADER} allowed: it and the "
                                      "member it describes were not read")
                else:
                    refused = refused or _extend(overrides, header.kind, self._read(header.size))
            else:
                yield header
            self._goto(following)  # whatever the consumer did not read is skipped

    def _finish(self, at: int) -> None:
        second = self._read(BLOCK)
        if len(second) < BLOCK:
            self.end = f"the shard ends without its end-of-archive blocks at byte {at + len(second)}: it was cut short"
        elif second.strip(b"\0"):
            self.hidden = f"a lone zero block at byte {at} is followed by more data (hidden from tar readers)"
        else:
            while chunk := self._read(CHUNK):  # after the end blocks comes padding; anything else is hidden
                if chunk.strip(b"\0"):
                    self.hidden = f"data after the end-of-archive blocks at byte {at} (hidden from tar readers)"
                    return

    def chunks(self, header: Header) -> Iterator[bytes]:
        """The data of the member ``headers`` yielded last, at most CHUNK bytes at a time."""
        if self.pos != header.offset:
            self._goto(header.offset)
        left = header.size
        while left > 0:
            data = self._read(min(left, CHUNK))
            if not data:
                raise ShardReadError(f"member '{printable(header.name)}' is cut short")
            left -= len(data)
            yield data


def _parse(block: bytes) -> Header:
    stored = _number(block[148:156])
    unsigned = sum(block[:148]) + 256 + sum(block[156:])
    if stored != unsigned and stored != unsigned - 256 * (BLOCK - 8 - len((block[:148] + block[156:]).translate(
            None, _HIGH))):  # or the signed sum some old tars wrote
        raise ValueError("bad header checksum")
    name = block[:100]
    if block[257:265] == b"ustar\x0000" and block[345:500].strip(b"\0"):
        name = block[345:500].split(b"\0", 1)[0] + b"/" + name.split(b"\0", 1)[0]
    return Header(_text(name), _number(block[124:136]), block[156:157], _text(block[157:257]))


def _extend(overrides: dict[str, str], kind: bytes, data: bytes) -> str | None:
    """Apply one extended header to the next member; a reason to refuse that member when it is malformed."""
    try:
        if kind == b"x":  # only what a sample reader uses is kept: many headers cannot pile up memory
            records = _pax(data)
            overrides.update({k: v for k, v in records.items() if k in ("path", "linkpath", "size")})
            if any(key.startswith("GNU.sparse.") for key in records):
                overrides["GNU.sparse."] = "1"
        elif kind in (b"L", b"K"):
            overrides["path" if kind == b"L" else "linkpath"] = _text(data)
    except (ValueError, UnicodeError):
        return Refusal(EXTENDED_HEADER_MALFORMED, "malformed extended header: it and the member it describes were "
                       "not read")
    return None  # b"g": global headers change nothing a sample reader uses


def _apply(header: Header, overrides: dict[str, str], refused: str | None) -> Header:
    header.name = overrides.get("path", header.name)
    header.link = overrides.get("linkpath", header.link)
    header.refused = refused
    if "size" in overrides:
        if overrides["size"].isdigit():
            header.size = int(overrides["size"])
        else:
            header.refused = header.refused or Refusal(PAX_SIZE, "pax size is not a number (not read)")
    if any(key.startswith("GNU.sparse.") for key in overrides):
        header.kind = b"S"
    if header.kind == b"5":
        header.name = header.name.rstrip("/")  # as tarfile names directories
    if header.refused is None and header.kind not in _REGULAR:
        why = _KINDS.get(header.kind, "member of unsupported tar type {kind!r} (not read)")
        header.refused = Refusal(MEMBER_TYPE, why.format(link=printable(header.link), kind=header.kind))
    return header
