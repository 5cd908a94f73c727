"""The box tree of an MP4 nobody vouched for, walked before any demuxer opens it.

FFmpeg builds its index from the sample tables whole, before the first packet is read: a few bytes of ``stsz`` or
``stts`` declaring 40 million samples cost it 1.5 GiB in a second, and a ``stco`` pointing thousands of times at the
same packet makes it demux that packet thousands of times. So the tables are read here first, by a bounded walk:
every box must fit inside its parent (and the file), nesting and box counts are capped, ``moov``/``moof`` are read
only when under ``MAX_INDEX_BOX`` bytes, and each table's counts are checked against what a clip can hold: at most
``max_samples`` samples, entries backed by the table's own bytes, and declared sample sizes that add up to no more
than the file. Memory is one index box; time is linear in the boxes and the table entries (both capped).
"""
from __future__ import annotations

import struct
from typing import BinaryIO

import numpy as np

from schemas.reader_checks import MP4_STRUCTURE

CONTAINERS = {b"moov", b"trak", b"mdia", b"minf", b"stbl", b"edts", b"mvex", b"moof", b"traf", b"mfra"}
INDEXES = (b"moov", b"moof")  # top-level boxes read whole (the others are skipped by their size)
MAX_INDEX_BOX = 4 << 20  # a real moov of an 81-frame clip is about 2 KiB
MAX_BOXES = 4096  # all levels together; a real clip has about 25
MAX_DEPTH = 8  # moov/trak/mdia/minf/stbl/stsz is 6 deep
MAX_TRACKS = 8
MAX_EDITS = 64  # elst entries: each edit makes FFmpeg rebuild the index; real clips have one
_TABLES = {  # kind -> (bytes before the entry count, bytes per entry)
    b"stts": (4, 8), b"ctts": (4, 8), b"stsc": (4, 12), b"stco": (4, 4), b"co64": (4, 8), b"stss": (4, 4),
    b"stps": (4, 4), b"elst": (4, 0), b"sbgp": (8, 8), b"trun": (4, 0),
}
_TRUN_FIELDS = ((0x100, 4), (0x200, 4), (0x400, 4), (0x800, 4))  # per-sample fields present by trun flags


class Mp4StructureError(ValueError):
    """An MP4 whose boxes or sample tables no clip of the format has; not handed to any demuxer."""

    check = MP4_STRUCTURE


class _Walk:
    def __init__(self, size: int, max_samples: int) -> None:
        self.size, self.max_samples = size, max_samples
        self.boxes = self.tracks = self.fragment_samples = 0

    def fail(self, problem: str) -> None:
        raise Mp4StructureError(f"{problem} (not demuxed)")

    def header(self, data: bytes, pos: int, end: int, where: str, base: int = 0) -> tuple[bytes, int, int]:
        """(kind, header length, box size) of the box at ``pos`` (byte ``base + pos`` of ``where``), which must end
        by ``end``."""
        self.boxes += 1
        if self.boxes > MAX_BOXES:
            self.fail(f"more than {MAX_BOXES} boxes")
        if end - pos < 8:
            self.fail(f"{end - pos} stray bytes at byte {base + pos} of {where}, too few for a box header")
        size, kind = struct.unpack_from(">I4s", data, pos)
        length = 8
        if size == 1:
            if end - pos < 16:
                self.fail(f"box {_name(kind)} at byte {base + pos} of {where} is cut short")
            size, length = struct.unpack_from(">Q", data, pos + 8)[0], 16
        elif size == 0:
            size = end - pos  # to the end of its parent
        if size < length or size > end - pos:
            self.fail(f"box {_name(kind)} at byte {base + pos} of {where} claims {size} bytes, but {end - pos} "
                      "remain")
        return kind, length, size

    def children(self, data: bytes, start: int, end: int, depth: int, where: str) -> None:
        if depth > MAX_DEPTH:
            self.fail(f"boxes nested more than {MAX_DEPTH} deep")
        pos = start
        while pos < end:
            kind, length, size = self.header(data, pos, end, where)
            if kind == b"trak":
                self.tracks += 1
                if self.tracks > MAX_TRACKS:
                    self.fail(f"more than {MAX_TRACKS} tracks")
            if kind in CONTAINERS:
                self.children(data, pos + length, pos + size, depth + 1, _name(kind))
            elif kind in _TABLES or kind in (b"stsz", b"stz2"):
                self.table(kind, memoryview(data)[pos + length:pos + size])
            pos += size

    def _count(self, kind: bytes, what: str, count: int, limit: int | None = None) -> None:
        limit = self.max_samples if limit is None else limit
        if count > limit:
            self.fail(f"sample table {_name(kind)} declares {count} {what}, more than the {limit} a clip may hold")

    def table(self, kind: bytes, body: memoryview) -> None:
        if kind in (b"stsz", b"stz2"):
            self.sizes(kind, body)
            return
        skip, width = _TABLES[kind]
        flags = int.from_bytes(body[1:4], "big") if len(body) >= 4 else 0
        if kind == b"sbgp" and body[:1] == b"\1":
            skip += 4  # grouping_type_parameter
        if len(body) < skip + 4:
            self.fail(f"sample table {_name(kind)} is cut short")
        count = int.from_bytes(body[skip:skip + 4], "big")
        if kind == b"elst":
            width = 20 if body[0] == 1 else 12
        elif kind == b"trun":
            width = sum(size for bit, size in _TRUN_FIELDS if flags & bit)
            skip += 4 * bool(flags & 0x1) + 4 * bool(flags & 0x4)  # data offset, first sample flags
            self.fragment_samples += count
            self._count(kind, "samples in all fragments", self.fragment_samples)
        self._count(kind, "entries", count, MAX_EDITS if kind == b"elst" else None)
        if count * width > len(body) - skip - 4:
            self.fail(f"sample table {_name(kind)} declares {count} entries of {width} bytes in "
                      f"{len(body) - skip - 4} bytes")
        if kind in (b"stts", b"ctts", b"sbgp", b"stsc"):  # counts of samples (per chunk, for stsc)
            entries = np.frombuffer(body, ">u4", count * width // 4, skip + 4).reshape(count, width // 4)
            column = entries[:, 1] if kind == b"stsc" else entries[:, 0]
            total = int(column.max(initial=0)) if kind == b"stsc" else int(column.sum(dtype=np.uint64))
            self._count(kind, "samples per chunk" if kind == b"stsc" else "samples", total)

    def sizes(self, kind: bytes, body: memoryview) -> None:
        if len(body) < 12:
            self.fail(f"sample table {_name(kind)} is cut short")
        count = int.from_bytes(body[8:12], "big")
        self._count(kind, "samples", count)
        if kind == b"stsz" and (uniform := int.from_bytes(body[4:8], "big")):
            total = uniform * count
        else:
            bits = body[7] if kind == b"stz2" else 32
            if bits not in (4, 8, 16, 32) or (count * bits + 7) // 8 > len(body) - 12:
                self.fail(f"sample table {_name(kind)} declares {count} sizes of {bits} bits in {len(body) - 12} "
                          "bytes")
            if bits == 4:
                packed = np.frombuffer(body, np.uint8, (count + 1) // 2, 12)
                total = int((packed >> 4).sum(dtype=np.uint64) + (packed & 15).sum(dtype=np.uint64))
            else:
                total = int(np.frombuffer(body, f">u{bits // 8}", count, 12).sum(dtype=np.uint64))
        if total > self.size:
            self.fail(f"sample table {_name(kind)} declares {total} bytes of samples in a file of {self.size}")


def _name(kind: bytes) -> str:
    return repr(kind.decode("latin1"))


def check_mp4_boxes(handle: BinaryIO, size: int, max_samples: int) -> None:
    """Raise Mp4StructureError when the MP4 of ``size`` bytes at the handle's start breaks a bound (module doc).
    The handle is left at its start."""
    walk, pos = _Walk(size, max_samples), 0
    try:
        while pos < size:
            handle.seek(pos)
            head = handle.read(16)
            kind, length, box = walk.header(head + b"\0" * (16 - len(head)), 0, size - pos, "the file", pos)
            if kind in INDEXES:
                if box > MAX_INDEX_BOX:
                    walk.fail(f"box {_name(kind)} of {box} bytes, more than the {MAX_INDEX_BOX} allowed")
                handle.seek(pos + length)
                body = handle.read(box - length)
                walk.children(body, 0, len(body), 1, _name(kind))
            pos += box
    finally:
        handle.seek(0)
