"""MP4s built to hurt a demuxer, from a good one: an index bomb (sample tables declaring millions of samples) and a
replay bomb (a chunk table pointing again and again at the same packet, which decodes to nothing)."""
from __future__ import annotations

import io
import struct

import av

CONTAINERS = {b"moov", b"trak", b"mdia", b"minf", b"stbl", b"edts", b"dinf"}
Box = list  # [kind, bytes | list[Box]]


def parse(data: bytes, start: int = 0, end: int | None = None) -> list[Box]:
    end = len(data) if end is None else end
    out, pos = [], start
    while pos + 8 <= end:
        size, kind = struct.unpack(">I4s", data[pos:pos + 8])
        header = 8
        if size == 1:
            size, header = struct.unpack(">Q", data[pos + 8:pos + 16])[0], 16
        elif size == 0:
            size = end - pos
        out.append([kind, parse(data, pos + header, pos + size) if kind in CONTAINERS
                    else bytes(data[pos + header:pos + size])])
        pos += size
    return out


def build(boxes: list[Box]) -> bytes:
    out = b""
    for kind, body in boxes:
        payload = build(body) if isinstance(body, list) else body
        out += struct.pack(">I4s", 8 + len(payload), kind) + payload
    return out


def _find(boxes: list[Box], kind: bytes) -> Box:
    return next(box for box in boxes if box[0] == kind)


def _with_tables(mp4: bytes, tables: dict[bytes, bytes | None]) -> bytes:
    """The MP4 with each track's sample tables replaced (None: removed)."""
    boxes = parse(mp4)
    for trak in (box for box in _find(boxes, b"moov")[1] if box[0] == b"trak"):
        stbl = _find(_find(_find(trak[1], b"mdia")[1], b"minf")[1], b"stbl")
        stbl[1] = [[kind, tables.get(kind, body)] for kind, body in stbl[1] if tables.get(kind, body) is not None]
    return build(boxes)


def _mdat_payload(mp4: bytes) -> int:
    pos = 0
    for kind, body in parse(mp4):
        if kind == b"mdat":
            return pos + 8
        pos += 8 + len(build(body) if isinstance(body, list) else body)
    raise ValueError("no mdat")


def index_bomb(mp4: bytes, count: int, size: int = 800) -> bytes:
    """``count`` samples of ``size`` bytes declared in a few bytes of stsz/stts/stsc: FFmpeg's index grows to
    about 37 bytes a sample before the first packet is read."""
    return _with_tables(mp4, {
        b"stsz": struct.pack(">III", 0, size, count), b"stts": struct.pack(">IIII", 0, 1, count, 1),
        b"stsc": struct.pack(">IIIII", 0, 1, 1, count, 1), b"stco": struct.pack(">III", 0, 1, _mdat_payload(mp4)),
        b"stss": None, b"ctts": None, b"sdtp": None})


def replay_bomb(mp4: bytes, chunks: int, offset: int, size: int) -> bytes:
    """Every sample is the packet at ``offset`` (``size`` bytes), read ``chunks`` times; none is a keyframe, so
    each decodes to nothing and no frame count ever grows."""
    return _with_tables(mp4, {
        b"stsz": struct.pack(">III", 0, size, chunks), b"stts": struct.pack(">IIII", 0, 1, chunks, 1024),
        b"stsc": struct.pack(">IIIII", 0, 1, 1, 1, 1),
        b"stco": struct.pack(">II", 0, chunks) + struct.pack(">I", offset) * chunks,
        b"stss": struct.pack(">III", 0, 1, chunks + 5), b"ctts": None, b"sdtp": None})


def packets(mp4: bytes) -> list[tuple[int, int, bool]]:
    """(byte offset, size, keyframe) of each video packet."""
    with av.open(io.BytesIO(mp4), format="mp4") as container:
        return [(p.pos, p.size, p.is_keyframe) for p in container.demux(container.streams.video[0]) if p.size]


def non_key_packet(mp4: bytes, largest: bool = True) -> tuple[int, int]:
    """(offset, size) of the largest (or smallest) packet that is not a keyframe."""
    choose = max if largest else min
    offset, size, _ = choose((p for p in packets(mp4) if not p[2]), key=lambda p: p[1])
    return offset, size
