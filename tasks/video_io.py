"""Decoding sources once into normalised frames, and encoding outputs once (PyAV; libx264).

Every container is closed; every decode runs under a deadline in a worker thread, so a hung demuxer (a FIFO,
a stalled network mount) fails the clip with a reason instead of hanging the run.
"""
from __future__ import annotations

import io
import threading
from collections.abc import Sequence
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
    scale, new_h, new_w, y0, x0 = cover_geometry(frame.shape[0], frame.shape[1], height, width)
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    resized = cv2.resize(frame, (new_w, new_h), interpolation=interp)
    return resized[y0:y0 + height, x0:x0 + width], scale, (float(x0), float(y0))


def cover_geometry(h: int, w: int, height: int, width: int) -> tuple[float, int, int, int, int]:
    """Resize-to-cover size and centre-crop offset: (scale, new_h, new_w, y0, x0)."""
    scale = max(height / h, width / w)
    new_h, new_w = max(height, round(h * scale)), max(width, round(w * scale))
    return scale, new_h, new_w, (new_h - height) // 2, (new_w - width) // 2


class _Normaliser:
    """Turns decoded frames into output frames: one swscale pass (resize + RGB), then the centre crop.
    Only frames that reach the output are converted; a frame repeated by the resampler is converted once."""

    def __init__(self, height: int, width: int):
        self.height, self.width = height, width
        self.geometry: tuple[float, int, int, int, int] | None = None
        self._last_id: int | None = None
        self._last: np.ndarray | None = None

    def __call__(self, frame: av.VideoFrame) -> np.ndarray:
        if id(frame) == self._last_id and self._last is not None:
            return self._last
        if self.geometry is None:
            self.geometry = cover_geometry(frame.height, frame.width, self.height, self.width)
        _, new_h, new_w, y0, x0 = self.geometry
        # threads=1 throughout: swscale's automatic threads cost a third more CPU for the same bytes, and the
        # executor already keeps every core busy with other clips.
        if new_w < frame.width and frame.format.name == "yuv420p":
            # Downscaling 4:2:0 (HD and up): scale the planes, then convert at the output size (swscale's unscaled
            # YUV->RGB path, same colour matrix): ~40% less CPU than one scaled YUV->RGB pass, and closer in mean
            # colour to a full-resolution conversion; chroma keeps the 4:2:0 resolution the encoder keeps anyway.
            frame = frame.reformat(width=new_w, height=new_h, interpolation="AREA", threads=1)
            image = frame.to_ndarray(format="rgb24", threads=1)
        else:
            image = frame.to_ndarray(width=new_w, height=new_h, format="rgb24",
                                     interpolation="AREA" if new_w < frame.width else "BILINEAR", threads=1)
        self._last_id, self._last = id(frame), image[y0:y0 + self.height, x0:x0 + self.width]
        return self._last


class _FrameBuffer:
    """Output frames written straight into one preallocated (N,H,W,3) array when N is known (``max_frames``):
    no list of per-frame arrays stacked at the end, so a clip's frames are held once, not twice."""

    def __init__(self, height: int, width: int, capacity: int | None):
        self._array = np.empty((capacity, height, width, 3), np.uint8) if capacity else None
        self._list: list[np.ndarray] = []
        self._count = 0

    def __len__(self) -> int:
        return self._count

    def append(self, image: np.ndarray) -> None:
        if self._array is not None:
            self._array[self._count] = image
        else:
            self._list.append(image)
        self._count += 1

    def array(self) -> np.ndarray:
        if self._array is None:
            return np.stack(self._list)
        if self._count == len(self._array):
            return self._array
        return self._array[: self._count].copy()  # a short source: keep only what it filled


def _decode(path: str, fps: int, height: int, width: int, max_seconds: float, max_frames: int | None
            ) -> SourceVideo:
    try:
        container = av.open(path, mode="r", timeout=30.0)
    except av.error.InvalidDataError as exc:
        raise DecodeError(f"not a readable video container ({exc.strerror or exc})") from exc
    except av.error.FFmpegError as exc:
        raise DecodeError(f"cannot open: {exc}") from exc
    normalise = _Normaliser(height, width)
    frames = _FrameBuffer(height, width, max_frames)
    with container:
        if not container.streams.video:
            raise DecodeError("the file has no video stream")
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        rate = stream.average_rate or stream.guessed_rate
        source_fps = float(rate) if rate else 0.0
        step = 1.0 / fps
        next_t = 0.0  # time of the next output slot
        last: av.VideoFrame | None = None
        last_t = 0.0
        truncated = False
        time_base = stream.time_base or Fraction(1, 90000)
        start_pts: int | None = None
        limit = max_frames or 1 << 62
        try:
            for index, frame in enumerate(container.decode(stream)):
                if start_pts is None:
                    start_pts = frame.pts or 0
                t = float((frame.pts - start_pts) * time_base) if frame.pts is not None else index / (source_fps or fps)
                if t >= max_seconds or len(frames) >= limit:
                    truncated = True
                    break
                # Each output slot shows the source frame nearest to it in time.
                while last is not None and next_t < (last_t + t) / 2 and len(frames) < limit:
                    frames.append(normalise(last))
                    next_t += step
                last, last_t = frame, t
        except av.error.FFmpegError as exc:
            if len(frames) < fps:
                raise DecodeError(f"the video stream is corrupt: {exc}") from exc
            truncated = True  # keep what decoded cleanly before the corruption
        if last is None:
            raise DecodeError("no decodable video frame")
        end_t = last_t + 1.0 / (source_fps or fps)  # the last source frame stays on screen until here
        while next_t < end_t - step / 2 and len(frames) < limit:
            frames.append(normalise(last))
            next_t += step
        codec = stream.codec_context.name
        src_h, src_w = last.height, last.width
    scale, _, _, y0, x0 = normalise.geometry or cover_geometry(src_h, src_w, height, width)
    return SourceVideo(frames.array(), float(fps), source_fps, (src_h, src_w), scale, (float(x0), float(y0)),
                       duration_s=min(end_t, len(frames) / fps) if truncated else end_t, codec=codec,
                       truncated=truncated)


def decode_normalised(path: str | Path, fps: int = 16, height: int = 480, width: int = 832,
                      max_seconds: float = 60.0, timeout_s: float = 120.0, max_frames: int | None = None
                      ) -> SourceVideo:
    """Decode a source once: constant ``fps`` by timestamp resampling, resize-to-cover and centre crop.
    Stops after ``max_frames`` output frames (what the windows need) or ``max_seconds``."""
    path = str(path)
    if not Path(path).exists():
        raise DecodeError(f"no such file: {path}")
    if Path(path).is_file() and Path(path).stat().st_size == 0:
        raise DecodeError("the file is empty (0 bytes)")
    return _run_with_deadline(lambda: _decode(path, fps, height, width, max_seconds, max_frames), timeout_s,
                              Path(path).name)


def encode_h264(frames: np.ndarray, fps: int = 16, crf: int = 23, preset: str = "veryfast",
                threads: int = 0, keyframes: Sequence[int] = ()) -> bytes:
    """Encode (N,H,W,3) uint8 RGB frames to an H.264 MP4 in memory, exactly N frames at a constant ``fps``.
    ``keyframes``: frames forced to IDR, so two clips equal from there on encode (nearly) alike."""
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"expected (N,H,W,3) uint8 frames, got {frames.shape} {frames.dtype}")
    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height = frames.shape[2], frames.shape[1]
        stream.pix_fmt = "yuv420p"
        stream.options = {"crf": str(crf), "preset": preset, **({"forced-idr": "1"} if keyframes else {})}
        if threads:
            stream.codec_context.thread_count = threads
        forced = set(keyframes)
        even = frames.shape[1] % 2 == 0 and frames.shape[2] % 2 == 0
        for t, image in enumerate(frames):
            # OpenCV's RGB -> I420 (BT.601, as swscale's default) is several times cheaper than PyAV's swscale
            # conversion and releases the GIL: a third less wall time per encode (benchmarks/ingest.py)
            frame = av.VideoFrame.from_ndarray(cv2.cvtColor(image, cv2.COLOR_RGB2YUV_I420), format="yuv420p") \
                if even else av.VideoFrame.from_ndarray(image, format="rgb24")
            if t in forced:
                frame.pict_type = av.video.frame.PictureType.I
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return buffer.getvalue()
