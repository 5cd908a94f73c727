"""Reading the packed MP4 entries (PyAV; every container is closed)."""
from __future__ import annotations

import io
from dataclasses import dataclass
from fractions import Fraction

import av
import numpy as np


@dataclass(frozen=True)
class Mp4Info:
    frames: int
    fps: float
    height: int
    width: int
    codec: str


def probe_mp4(data: bytes) -> Mp4Info:
    """Decode every frame (a count from the header can lie) and report what was really there."""
    with av.open(io.BytesIO(data), mode="r") as container:
        stream = container.streams.video[0]
        rate = stream.average_rate or stream.guessed_rate or Fraction(0)
        count = 0
        height = width = 0
        for frame in container.decode(stream):
            count += 1
            height, width = frame.height, frame.width
        return Mp4Info(count, float(rate), height, width, stream.codec_context.name)


def decode_mp4(data: bytes, size: tuple[int, int] | None = None) -> np.ndarray:
    """All frames as (N,H,W,3) uint8 RGB; ``size=(h, w)`` rescales in the decoder (cheaper than after)."""
    frames = []
    with av.open(io.BytesIO(data), mode="r") as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        for frame in container.decode(stream):
            if size is not None:
                frame = frame.reformat(width=size[1], height=size[0])
            frames.append(frame.to_ndarray(format="rgb24"))
    if not frames:
        raise ValueError("the MP4 holds no decodable frame")
    return np.stack(frames)
