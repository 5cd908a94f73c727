"""Reading the packed MP4 entries (PyAV; every container is closed)."""
from __future__ import annotations

import io
import time
from dataclasses import dataclass
from fractions import Fraction
from typing import BinaryIO

import av
import numpy as np


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
              max_pixels: int = 4096 * 4096) -> Mp4Info:
    """Decode every frame (a count from the header can lie) and report what was really there, within bounds.

    Only the MP4 demuxer is used (no format probing: no playlist or concat demuxer that would open other files or
    URLs; external data references stay off). Decoding stops after ``max_frames`` (``more`` is then True),
    refuses frames larger than ``max_pixels`` before decoding them, and raises DecodeLimitError past
    ``max_seconds``. ``data`` may be an open binary file (a video spooled to disk rather than held in memory).
    """
    deadline = time.monotonic() + max_seconds
    source = io.BytesIO(data) if isinstance(data, (bytes, bytearray, memoryview)) else data
    with av.open(source, mode="r", format="mp4") as container:
        stream = container.streams.video[0]
        ctx = stream.codec_context
        ctx.options = {"max_pixels": str(max_pixels)}  # the decoder's own bound: also for an in-band SPS change
        if ctx.width * ctx.height > max_pixels:
            raise DecodeLimitError(f"declares {ctx.width}x{ctx.height} frames, more than the {max_pixels} pixels "
                                   "allowed (not decoded)")
        rate = stream.average_rate or stream.guessed_rate or Fraction(0)
        count = 0
        height = width = 0
        for packet in container.demux(stream):
            if time.monotonic() > deadline:
                raise DecodeLimitError(f"decoding took more than {max_seconds:g} s (stopped after {count} frames)")
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
