"""Helpers shared by the benchmark scripts: peak-RSS sampling and the ffmpeg CLI floor."""
from __future__ import annotations

import subprocess
import threading
import time
from pathlib import Path

import ffmpeg
import psutil


class PeakRSS(threading.Thread):
    """Samples the resident memory of this process (or of ``pid``) and its children every 50 ms."""

    def __init__(self, pid: int | None = None) -> None:
        super().__init__(daemon=True)
        self.peak = 0
        self.pid = pid
        self._done = threading.Event()

    def run(self) -> None:
        try:
            me = psutil.Process(self.pid)
        except psutil.Error:
            return
        while not self._done.is_set():
            try:
                rss = me.memory_info().rss + sum(c.memory_info().rss for c in me.children(recursive=True))
            except psutil.Error:
                rss = 0
            self.peak = max(self.peak, rss)
            time.sleep(0.05)

    def __enter__(self) -> "PeakRSS":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self._done.set()
        self.join()

    @property
    def mib(self) -> float:
        return self.peak / 2**20


def ffmpeg_floor(sources: list[Path], out_dir: Path, windows: int, crf: int, preset: str,
                 keyframes: tuple[int, ...] = ()) -> tuple[float, float]:
    """The ffmpeg CLI alone: decode once -> fps 16 -> scale+crop 832x480 -> one libx264 encode -> 81-frame
    segments. ``keyframes``: frames of each 81-frame window forced to IDR besides its first (the pipeline's
    chunk keyframes), so both encoders make the same IDR frames and the segments split at every 81st frame.
    Returns (seconds, peak RSS MiB of the ffmpeg processes)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    forced = [81 * w + k for w in range(windows) for k in (0, *keyframes)]
    force_expr = "expr:" + "+".join(f"eq(n,{f})" for f in forced)
    started = time.perf_counter()
    peak = 0.0
    for index, source in enumerate(sources):
        stream = (ffmpeg.input(str(source)).filter("fps", fps=16)
                  .filter("scale", 832, 480, force_original_aspect_ratio="increase").filter("crop", 832, 480)
                  .trim(end_frame=81 * windows).setpts("PTS-STARTPTS"))
        command = (ffmpeg.output(stream, str(out_dir / f"{index:04d}-%03d.mp4"), vcodec="libx264", crf=crf,
                                 preset=preset, pix_fmt="yuv420p", force_key_frames=force_expr,
                                 **{"forced-idr": 1}, f="segment", segment_frames=",".join(
                                     str(81 * k) for k in range(1, windows)) or "81", reset_timestamps=1)
                   .overwrite_output().global_args("-loglevel", "error").compile())
        proc = subprocess.Popen(command)
        child = psutil.Process(proc.pid)
        while proc.poll() is None:
            try:
                peak = max(peak, child.memory_info().rss / 2**20)
            except psutil.Error:
                pass
            time.sleep(0.05)
        if proc.returncode:
            raise RuntimeError(f"ffmpeg failed on {source}")
    return time.perf_counter() - started, peak
