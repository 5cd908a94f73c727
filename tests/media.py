"""Real test videos, written with PyAV: moving-object scenes in several containers and codecs, and broken files."""
from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np


def scene_frames(n: int, height: int = 360, width: int = 640, seed: int = 0, shift: int = 0) -> np.ndarray:
    """A textured backdrop with a coloured disc crossing it: sustained, localised motion."""
    rng = np.random.default_rng(seed)
    base = cv2.resize((rng.random((9, 16, 3)) * 200 + 30).astype(np.uint8), (width, height),
                      interpolation=cv2.INTER_CUBIC)
    for _ in range(25):  # corners and edges so trackers and cut detectors have structure
        x, y = int(rng.integers(0, width - 40)), int(rng.integers(0, height - 40))
        colour = tuple(int(c) for c in rng.integers(0, 255, 3))
        cv2.rectangle(base, (x, y), (x + int(rng.integers(10, 40)), y + int(rng.integers(10, 40))), colour, -1)
    colour = tuple(int(c) for c in rng.integers(60, 255, 3))
    frames = []
    for i in range(n):
        frame = np.roll(base, shift * i, axis=1).copy()
        cx = int(width * 0.15 + (width * 0.7) * i / max(1, n - 1))
        cv2.circle(frame, (cx, height // 2), height // 6, colour, -1)
        frames.append(frame)
    return np.stack(frames)


def write_video(path: Path, frames: np.ndarray, fps: float = 25, codec: str = "libx264",
                pix_fmt: str = "yuv420p", pts_jitter: bool = False) -> Path:
    """Encode RGB frames. ``pts_jitter`` writes variable-frame-rate timestamps (as phones do)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), mode="w") as container:
        rate = Fraction(fps).limit_denominator(1000)
        stream = container.add_stream(codec, rate=rate)
        stream.width, stream.height = frames.shape[2], frames.shape[1]
        stream.pix_fmt = pix_fmt
        if pts_jitter:
            stream.codec_context.time_base = Fraction(1, 1000)
        t_ms = 0
        rng = np.random.default_rng(1)
        for i, image in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            if pts_jitter:
                frame.pts, frame.time_base = t_ms, Fraction(1, 1000)
                t_ms += int(1000 / fps * rng.uniform(0.6, 1.4))
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def montage(n_per_shot: int = 60, shots: int = 3, **kwargs) -> np.ndarray:
    """Hard cuts between unrelated scenes."""
    return np.concatenate([scene_frames(n_per_shot, seed=10 + s, **kwargs) for s in range(shots)])


def truncate(src: Path, dst: Path, fraction: float = 0.4) -> Path:
    data = src.read_bytes()
    dst.write_bytes(data[: int(len(data) * fraction)])
    return dst


def corrupt_stream(src: Path, dst: Path, seed: int = 0) -> Path:
    """Overwrite bytes in the middle of the stream, keeping the container header intact."""
    data = bytearray(src.read_bytes())
    rng = np.random.default_rng(seed)
    start = len(data) // 5
    for offset in rng.integers(start, len(data) - 1, size=len(data) // 8):
        data[int(offset)] = int(rng.integers(0, 256))
    dst.write_bytes(bytes(data))
    return dst


def mixed_folder(root: Path) -> dict[str, str]:
    """The folder a new user might point ingest at. Returns file name -> expected outcome."""
    root.mkdir(parents=True, exist_ok=True)
    expected = {}
    write_video(root / "walk_h264.mp4", scene_frames(150, seed=1), fps=25)
    expected["walk_h264.mp4"] = "accepted"
    write_video(root / "pan_mpeg4.mov", scene_frames(144, seed=2, shift=2), fps=24, codec="mpeg4")
    expected["pan_mpeg4.mov"] = "accepted"
    write_video(root / "clip_mjpeg.avi", scene_frames(120, seed=3), fps=20, codec="mjpeg", pix_fmt="yuvj420p")
    expected["clip_mjpeg.avi"] = "accepted"
    write_video(root / "clip_vp9.webm", scene_frames(96, height=240, width=426, seed=4), fps=16, codec="libvpx-vp9")
    expected["clip_vp9.webm"] = "accepted"
    write_video(root / "phone_vfr.mkv", scene_frames(190, seed=5), fps=30, pts_jitter=True)
    expected["phone_vfr.mkv"] = "accepted"
    write_video(root / "montage.mp4", montage(), fps=16)
    expected["montage.mp4"] = "rejected:scene_cut"
    write_video(root / "still.mp4", np.repeat(scene_frames(1, seed=6), 90, axis=0), fps=16)
    expected["still.mp4"] = "rejected:static_scene"
    write_video(root / "short.mp4", scene_frames(30, seed=7), fps=16)
    expected["short.mp4"] = "rejected:too_short"
    (root / "empty.mp4").write_bytes(b"")
    expected["empty.mp4"] = "failed"
    (root / "notes.mp4").write_text("this is not a video, just text with a .mp4 name\n" * 20)
    expected["notes.mp4"] = "failed"
    truncate(root / "walk_h264.mp4", root / "truncated.mp4", 0.3)
    expected["truncated.mp4"] = "failed"
    corrupt_stream(root / "pan_mpeg4.mov", root / "corrupt_stream.mov")
    expected["corrupt_stream.mov"] = "any"  # a decoder may conceal damage; it must end in the manifest
    return expected
