"""Decoding once to the training grid, and failing clearly on bad input."""
from __future__ import annotations

import os
import threading

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


def test_variable_frame_rate_is_resampled_by_timestamp(tmp_path):
    path = write_video(tmp_path / "vfr.mkv", scene_frames(120), fps=30, pts_jitter=True)
    video = decode_normalised(path)
    assert abs(len(video.frames) - round(video.duration_s * 16)) <= 1


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
