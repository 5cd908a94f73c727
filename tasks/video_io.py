"""Decoding sources once into normalised frames, and encoding outputs once (PyAV; libx264).

Every container is closed; every decode runs under a deadline in a worker thread, so a hung demuxer (a FIFO,
a stalled network mount) fails the clip with a reason instead of hanging the run.
"""
from __future__ import annotations

import io
import threading
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np


class DecodeError(RuntimeError):
    """The source could not be decoded; the message says why, in words a user can act on."""


class DecodeTimeout(DecodeError):
    pass


@dataclass(frozen=True)
class SourceVideo:
    """A source decoded to the training grid: constant fps, resized to cover and centre-cropped."""

    frames: np.ndarray  # (N,H,W,3) uint8 RGB
    fps: float  # of frames (the target fps)
    source_fps: float
    source_size: tuple[int, int]  # (h, w) as stored
    scale: float  # source pixel -> output pixel
    crop_xy: tuple[float, float]  # top-left of the crop in resized-source pixels
    duration_s: float  # decoded span of the source
    codec: str
    truncated: bool  # stopped at max_seconds


def _run_with_deadline(fn, timeout_s: float, what: str):
    """Run fn in a daemon thread; raise DecodeTimeout if it does not finish in time (the thread is abandoned)."""
    result: dict[str, object] = {}

    def target() -> None:
        try:
            result["value"] = fn()
        except BaseException as exc:  # re-raised in the caller's thread
            result["error"] = exc

    thread = threading.Thread(target=target, name=f"decode:{what}", daemon=True)
    thread.start()
    thread.join(timeout_s)
    if thread.is_alive():
        raise DecodeTimeout(f"decoding {what} did not finish within {timeout_s:g} s (hung or too slow)")
    if "error" in result:
        raise result["error"]  # type: ignore[misc]
    return result["value"]


def resize_cover_crop(frame: np.ndarray, height: int, width: int) -> tuple[np.ndarray, float, tuple[float, float]]:
    """Scale so the frame covers (height, width), then centre-crop. Returns frame, scale and crop offset."""
    h, w = frame.shape[:2]
    scale = max(height / h, width / w)
    new_h, new_w = max(height, round(h * scale)), max(width, round(w * scale))
    y0, x0 = (new_h - height) // 2, (new_w - width) // 2
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    resized = cv2.resize(frame, (new_w, new_h), interpolation=interp)
    return resized[y0:y0 + height, x0:x0 + width], scale, (float(x0), float(y0))


def _decode(path: str, fps: int, height: int, width: int, max_seconds: float) -> SourceVideo:
    try:
        container = av.open(path, mode="r", timeout=30.0)
    except av.error.InvalidDataError as exc:
        raise DecodeError(f"not a readable video container ({exc.strerror or exc})") from exc
    except av.error.FFmpegError as exc:
        raise DecodeError(f"cannot open: {exc}") from exc
    with container:
        if not container.streams.video:
            raise DecodeError("the file has no video stream")
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        rate = stream.average_rate or stream.guessed_rate
        source_fps = float(rate) if rate else 0.0
        frames: list[np.ndarray] = []
        scale, crop = 1.0, (0.0, 0.0)
        next_t = 0.0  # time of the next output frame; resampling keeps the latest source frame at or before it
        step = 1.0 / fps
        last: np.ndarray | None = None
        last_t = 0.0
        truncated = False
        time_base = stream.time_base or Fraction(1, 90000)
        start_pts: int | None = None
        try:
            for index, frame in enumerate(container.decode(stream)):
                pts = frame.pts if frame.pts is not None else None
                if start_pts is None:
                    start_pts = pts or 0
                t = float((pts - start_pts) * time_base) if pts is not None else index / (source_fps or fps)
                if t >= max_seconds:
                    truncated = True
                    break
                image = frame.to_ndarray(format="rgb24")
                # Each output slot shows the source frame nearest to it in time.
                while last is not None and next_t < (last_t + t) / 2:
                    frames.append(last)
                    next_t += step
                last, last_t = image, t
        except av.error.FFmpegError as exc:
            if len(frames) < fps:
                raise DecodeError(f"the video stream is corrupt: {exc}") from exc
            truncated = True  # keep what decoded cleanly before the corruption
        if last is None:
            raise DecodeError("no decodable video frame")
        end_t = last_t + 1.0 / (source_fps or fps)  # the last source frame stays on screen until here
        while next_t < end_t - step / 2:
            frames.append(last)
            next_t += step
        codec = stream.codec_context.name
    out = np.empty((len(frames), height, width, 3), dtype=np.uint8)
    cache: dict[int, np.ndarray] = {}
    for i, image in enumerate(frames):
        key = id(image)  # repeated source frames are resized once
        if key not in cache:
            cache.clear()
            cache[key], scale, crop = resize_cover_crop(image, height, width)
        out[i] = cache[key]
    src_h, src_w = frames[0].shape[:2]
    return SourceVideo(out, float(fps), source_fps, (src_h, src_w), scale, crop,
                       duration_s=end_t, codec=codec, truncated=truncated)


def decode_normalised(path: str | Path, fps: int = 16, height: int = 480, width: int = 832,
                      max_seconds: float = 60.0, timeout_s: float = 120.0) -> SourceVideo:
    """Decode a source once: constant ``fps`` by timestamp resampling, resize-to-cover and centre crop."""
    path = str(path)
    if not Path(path).exists():
        raise DecodeError(f"no such file: {path}")
    if Path(path).is_file() and Path(path).stat().st_size == 0:
        raise DecodeError("the file is empty (0 bytes)")
    return _run_with_deadline(lambda: _decode(path, fps, height, width, max_seconds), timeout_s, Path(path).name)


def encode_h264(frames: np.ndarray, fps: int = 16, crf: int = 23, preset: str = "veryfast",
                threads: int = 0) -> bytes:
    """Encode (N,H,W,3) uint8 RGB frames to an H.264 MP4 in memory, exactly N frames at a constant ``fps``."""
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"expected (N,H,W,3) uint8 frames, got {frames.shape} {frames.dtype}")
    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height = frames.shape[2], frames.shape[1]
        stream.pix_fmt = "yuv420p"
        stream.options = {"crf": str(crf), "preset": preset}
        if threads:
            stream.codec_context.thread_count = threads
        for image in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return buffer.getvalue()
