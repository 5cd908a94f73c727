"""Reading the packed MP4 entries (PyAV; every container is closed)."""
from __future__ import annotations

import io
import time
from dataclasses import dataclass
from fractions import Fraction
from typing import BinaryIO

import av
import numpy as np

from schemas.mp4_boxes import Mp4StructureError, check_mp4_boxes

__all__ = ["DecodeLimitError", "Mp4Info", "Mp4StructureError", "decode_mp4", "probe_mp4"]
SAMPLES_PER_FRAME = 8  # sample-table bound: max_frames x this (room for a longer clip to be named as such)
PACKET_SLACK = 16  # packets demuxed past max_frames before the clip is refused: one packet is one frame


@dataclass(frozen=True)
class Mp4Info:
    frames: int
    fps: float
    height: int
    width: int
    codec: str
    more: bool = False  # decoding stopped at max_frames with frames left


class DecodeLimitError(ValueError):
    """A clip that would take more time or pixels to decode than any valid sample."""


def probe_mp4(data: bytes | BinaryIO, max_frames: int = 1000, max_seconds: float = 60.0,
              max_pixels: int = 4096 * 4096, max_samples: int | None = None) -> Mp4Info:
    """Decode every frame (a count from the header can lie) and report what was really there, within bounds.

    The box tree is walked first (``schemas.mp4_boxes``): sample tables declaring more than ``max_samples``
    samples (``SAMPLES_PER_FRAME`` x ``max_frames`` by default), or more sample bytes than the file holds, raise
    Mp4StructureError before any demuxer builds an index from them. Only the MP4 demuxer is used (no format
    probing: no playlist or concat demuxer that would open other files or URLs; external data references stay
    off). Decoding stops after ``max_frames`` (``more`` is then True), refuses frames larger than ``max_pixels``
    before decoding them, and raises DecodeLimitError past ``max_seconds``, or when the demuxer hands out more
    than ``max_frames + PACKET_SLACK`` packets or more packet bytes than the file holds (a table that replays the
    same bytes). ``data`` may be an open binary file (a video spooled to disk rather than held in memory).
    """
    deadline = time.monotonic() + max_seconds
    source = io.BytesIO(data) if isinstance(data, (bytes, bytearray, memoryview)) else data
    size = source.seek(0, io.SEEK_END)
    source.seek(0)
    check_mp4_boxes(source, size, SAMPLES_PER_FRAME * max_frames if max_samples is None else max_samples)
    with av.open(source, mode="r", format="mp4") as container:
        stream = container.streams.video[0]
        ctx = stream.codec_context
        ctx.options = {"max_pixels": str(max_pixels)}  # the decoder's own bound: also for an in-band SPS change
        if ctx.width * ctx.height > max_pixels:
            raise DecodeLimitError(f"declares {ctx.width}x{ctx.height} frames, more than the {max_pixels} pixels "
                                   "allowed (not decoded)")
        rate = stream.average_rate or stream.guessed_rate or Fraction(0)
        count = packets = read = 0
        height = width = 0
        for packet in container.demux(stream):
            if time.monotonic() > deadline:
                raise DecodeLimitError(f"decoding took more than {max_seconds:g} s (stopped after {count} frames)")
            packets, read = packets + bool(packet.size), read + packet.size
            if packets > max_frames + PACKET_SLACK:
                if count >= max_frames:
                    return Mp4Info(count, float(rate), height, width, ctx.name, more=True)
                raise DecodeLimitError(f"demuxed more than {max_frames + PACKET_SLACK} packets for at most "
                                       f"{max_frames} frames (stopped after {count} frames)")
            if read > size:
                raise DecodeLimitError(f"packets of {read} bytes from a file of {size}: the sample tables read the "
                                       f"same bytes again (stopped after {count} frames)")
            for frame in packet.decode():
                if frame.width * frame.height > max_pixels:
                    raise DecodeLimitError(f"holds a {frame.width}x{frame.height} frame (not decoded further)")
                if count == max_frames:
                    return Mp4Info(count, float(rate), height, width, ctx.name, more=True)
                count += 1
                height, width = frame.height, frame.width
        return Mp4Info(count, float(rate), height, width, ctx.name)


def decode_mp4(data: bytes, size: tuple[int, int] | None = None) -> np.ndarray:
    """All frames as (N,H,W,3) uint8 RGB; ``size=(h, w)`` rescales in the decoder (cheaper than after)."""
    frames = []
    with av.open(io.BytesIO(data), mode="r", format="mp4") as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        for frame in container.decode(stream):
            if size is not None:
                frame = frame.reformat(width=size[1], height=size[0])
            frames.append(frame.to_ndarray(format="rgb24"))
    if not frames:
        raise ValueError("the MP4 holds no decodable frame")
    return np.stack(frames)
