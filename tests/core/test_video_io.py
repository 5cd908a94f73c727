"""Decoding once to the training grid, and failing clearly on bad input."""
from __future__ import annotations

import os
import threading
from fractions import Fraction

import av
import numpy as np
import pytest

from schemas.mp4 import probe_mp4
from tasks.video_io import DecodeError, DecodeTimeout, decode_normalised, encode_h264, resize_cover_crop
from tests.media import scene_frames, truncate, write_video


def test_resample_to_constant_16fps_and_cover_crop(tmp_path):
    path = write_video(tmp_path / "a.mp4", scene_frames(75, height=360, width=640), fps=30)  # 2.5 s
    video = decode_normalised(path)
    assert video.frames.shape == (40, 480, 832, 3) and video.frames.dtype == np.uint8
    assert video.source_fps == pytest.approx(30) and video.duration_s == pytest.approx(2.5, abs=0.05)
    assert video.scale == pytest.approx(480 / 360) and video.crop_xy == (10.0, 0.0)


# Variable frame rate: source frames at these known times (ms), each frame showing its own index as 8 bit bands.
VFR_MS = [0, 30, 45, 130, 170, 181, 260, 410, 425, 440, 520, 610, 650, 700, 790, 905, 960, 1010, 1130, 1190, 1240]


def _index_frame(index: int) -> np.ndarray:
    frame = np.zeros((480, 832, 3), np.uint8)
    for bit in range(8):
        if index >> bit & 1:
            frame[:, bit * 104:(bit + 1) * 104] = 255
    return frame


def _read_index(frame: np.ndarray) -> int:
    bands = frame[200:280].reshape(80, 8, 104, 3)[:, :, 20:84].mean(axis=(0, 2, 3))
    return sum(1 << bit for bit in range(8) if bands[bit] > 127)


def _write_vfr(path):
    """An MKV whose frames carry exactly the timestamps VFR_MS (a 1 ms time base, as phones write)."""
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = 832, 480, "yuv420p"
        stream.codec_context.time_base = Fraction(1, 1000)
        for index, t_ms in enumerate(VFR_MS):
            frame = av.VideoFrame.from_ndarray(_index_frame(index), format="rgb24")
            frame.pts, frame.time_base = t_ms, Fraction(1, 1000)
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    return path


def test_variable_frame_rate_is_resampled_by_timestamp(tmp_path):
    with av.open(str(_write_vfr(tmp_path / "vfr.mkv"))) as container:  # the file holds the intended times
        written = sorted(round(float(f.pts * f.time_base) * 1000) for f in container.decode(video=0))
    assert written == VFR_MS
    video = decode_normalised(tmp_path / "vfr.mkv")
    shown = [_read_index(f) for f in video.frames]
    times = np.array(VFR_MS) / 1000
    determined = int(times[-1] * 16) + 1  # the slots up to the last timestamp: fixed by the timestamps alone
    assert determined <= len(shown) <= determined + 2, len(shown)
    for k in range(determined):  # each 16 fps slot shows the source frame nearest to it in time
        distance = np.abs(times - k / 16)
        nearest = set(np.flatnonzero(np.isclose(distance, distance.min())))
        assert shown[k] in nearest, f"slot {k} ({k / 16:.4f} s) shows frame {shown[k]}, nearest is {nearest}"
    assert set(shown[determined:]) <= {len(VFR_MS) - 1}  # then only the last frame, for its display time


def test_resize_cover_crop_geometry():
    frame = np.zeros((720, 1280, 3), np.uint8)
    out, scale, (x0, y0) = resize_cover_crop(frame, 480, 832)
    assert out.shape == (480, 832, 3) and scale == pytest.approx(2 / 3) and y0 == 0 and x0 == pytest.approx(10)


def test_encode_exact_frames_fps_size():
    data = encode_h264(scene_frames(81, height=480, width=832))
    info = probe_mp4(data)
    assert (info.frames, info.fps, info.height, info.width, info.codec) == (81, 16.0, 480, 832, "h264")


@pytest.mark.parametrize("make,match", [
    (lambda p: p.write_bytes(b""), "empty"),
    (lambda p: p.write_text("plain text, not a video\n" * 50), "not a readable video"),
])
def test_broken_files_fail_with_a_clear_error(tmp_path, make, match):
    path = tmp_path / "bad.mp4"
    make(path)
    with pytest.raises(DecodeError, match=match):
        decode_normalised(path)


def test_truncated_mp4_fails(tmp_path):
    good = write_video(tmp_path / "good.mp4", scene_frames(60), fps=16)
    with pytest.raises(DecodeError):
        decode_normalised(truncate(good, tmp_path / "cut.mp4", 0.3))


@pytest.mark.timeout(30)
def test_hung_demuxer_times_out(tmp_path):
    """A FIFO nobody writes to blocks the demuxer forever: the deadline fails the clip instead."""
    fifo = tmp_path / "stalled.mp4"
    os.mkfifo(fifo)
    with pytest.raises(DecodeTimeout, match="did not finish within 2 s"):
        decode_normalised(fifo, timeout_s=2.0)
    # unblock the abandoned reader thread so the test process exits cleanly
    threading.Thread(target=lambda: open(fifo, "wb").close(), daemon=True).start()
