"""A clip equal to an encoded one outside some GOPs: those GOPs re-encoded, the others the reference's packets,
and third-party readers see one clean H.264 stream."""
from __future__ import annotations

import io
import subprocess

import av
import cv2
import numpy as np
import pytest

from tasks.augment.clean_view import CHUNK_KEYFRAMES
from tasks.video_io import encode_h264
from tasks.video_splice import changed_runs, encode_over, gop_bounds
from tests.media import scene_frames

KEYS = CHUNK_KEYFRAMES  # 9, 21, 33, 45, 57, 69: GOPs [0,9) [9,21) ... [69,81)
SETTINGS = {"fps": 16, "crf": 23, "preset": "ultrafast", "threads": 1, "keyframes": KEYS}


@pytest.fixture(scope="module")
def clean() -> tuple[np.ndarray, bytes]:
    frames = scene_frames(81, height=240, width=416, seed=4, shift=1)
    return frames, encode_h264(frames, 16, 23, "ultrafast", 1, KEYS)


def _packets(data: bytes) -> list[tuple[int, bytes]]:
    with av.open(io.BytesIO(data)) as container:
        return [(int(p.pts), bytes(p)) for p in container.demux(video=0) if p.size]


def _decode(data: bytes) -> np.ndarray:
    with av.open(io.BytesIO(data)) as container:
        return np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    return float(10 * np.log10(255 ** 2 / np.mean((a.astype(np.float64) - b) ** 2)))


def test_gops_and_the_runs_that_changed() -> None:
    assert gop_bounds(81, KEYS) == [(0, 9), (9, 21), (21, 33), (33, 45), (45, 57), (57, 69), (69, 81)]
    a = np.zeros((81, 2, 2, 3), np.uint8)
    b = a.copy()
    b[[22, 40, 75]] = 1
    assert changed_runs(b, a, KEYS) == [(21, 45), (69, 81)]
    assert changed_runs(a, a, KEYS) == []


def test_only_the_changed_gops_are_new_and_every_reader_sees_one_stream(clean, tmp_path) -> None:
    frames, clean_mp4 = clean
    degraded = frames.copy()
    degraded[21:45] = (degraded[21:45] * 0.3).astype(np.uint8)  # the lights go off for two chunks
    degraded[72] = 255 - degraded[72]  # and something in the last chunk
    out = encode_over(degraded, frames, clean_mp4, **SETTINGS)

    ref, new = dict(_packets(clean_mp4)), _packets(out)
    tick = 1024  # 1/16384 time base at 16 fps
    assert [pts // tick for pts, _ in sorted(new)] == list(range(81))
    copied = {pts // tick for pts, data in new if ref.get(pts) == data}
    assert copied == set(range(0, 21)) | set(range(45, 69))  # byte for byte the reference's packets there

    decoded, clean_decoded = _decode(out), _decode(clean_mp4)
    assert decoded.shape == frames.shape
    assert np.array_equal(decoded[:21], clean_decoded[:21]) and np.array_equal(decoded[45:69], clean_decoded[45:69])
    whole = _decode(encode_h264(degraded, 16, 23, "ultrafast", 1, KEYS))  # the changed GOPs as good as a whole encode
    for a, b in ((21, 45), (69, 81)):
        assert _psnr(decoded[a:b], degraded[a:b]) > _psnr(whole[a:b], degraded[a:b]) - 0.5

    path = tmp_path / "degraded.mp4"
    path.write_bytes(out)
    probe = subprocess.run(["ffprobe", "-v", "error", "-count_frames", "-show_entries", "stream=nb_read_frames",
                            "-of", "csv=p=0", str(path)], capture_output=True, text=True, check=True)
    assert probe.stdout.strip() == "81"
    errors = subprocess.run(["ffmpeg", "-v", "error", "-i", str(path), "-f", "null", "-"],
                            capture_output=True, text=True)
    assert errors.returncode == 0 and errors.stderr == ""
    capture, count = cv2.VideoCapture(str(path)), 0
    while capture.read()[0]:
        count += 1
    assert count == 81


def test_nothing_changed_is_the_reference_itself(clean) -> None:
    frames, clean_mp4 = clean
    assert encode_over(frames.copy(), frames, clean_mp4, **SETTINGS) is clean_mp4


def test_a_reference_encoded_otherwise_is_never_spliced(clean) -> None:
    """Other encoder settings, or no IDR frame at the GOP starts: the whole clip is encoded afresh."""
    frames, _ = clean
    degraded = frames.copy()
    degraded[30] = 0
    others = ((24, 1, KEYS), (23, 2, KEYS), (23, 1, ()))  # (crf, threads, keyframes): each differs in one
    for crf, threads, keys in others:
        reference_mp4 = encode_h264(frames, 16, crf, "ultrafast", threads, keys)
        out = encode_over(degraded, frames, reference_mp4, **SETTINGS)
        assert out == encode_h264(degraded, 16, 23, "ultrafast", 1, KEYS)
