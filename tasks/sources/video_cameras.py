"""A video with a per-frame camera file (a manifest row's ``camera``): decoded together, cameras kept native.

The camera file is nerfstudio-style JSON (``frames[i].transform_matrix``: OpenGL camera-to-world of video frame i,
intrinsics ``fl_x, fl_y, cx, cy, w, h`` with COLMAP/nerfstudio's corner origin) or an ``.npz`` with ``c2w`` (N,4,4,
OpenCV axes), ``K`` (N,3,3 or 3,3, pixel centres at integers) and ``hw`` (height, width the intrinsics describe).
Camera i belongs to decoded frame i; frames beyond the last camera are not used. The video's own frame rate is the
capture rate, and the frames go through the same resampling and normalisation as an image sequence.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import av
import numpy as np

from schemas.cameras import rescale_intrinsics
from schemas.config import Config
from tasks.records import SourceItem
from tasks.sources.camera_files import CameraTrack, read_nerfstudio
from tasks.sources.native import FrameSequence, NativeGeometry, decode_sequence


def read_camera_file(path: Path) -> CameraTrack:
    if path.suffix.lower() == ".npz":
        with np.load(path) as data:
            c2w = np.asarray(data["c2w"], np.float64).reshape(-1, 4, 4)
            k = np.broadcast_to(np.asarray(data["K"], np.float64).reshape(-1, 3, 3), (len(c2w), 3, 3)).copy()
            hw = tuple(int(v) for v in np.asarray(data["hw"]).reshape(2))
        return CameraTrack([], c2w, k, hw, None, format="npz")  # type: ignore[arg-type]
    return read_nerfstudio(path, with_images=False)


class _VideoFrames:
    """``read(j)``: the video's frame j (RGB), decoding forward only (the resampler asks in order)."""

    def __init__(self, path: str):
        self.container = av.open(path)
        stream = self.container.streams.video[0]
        rate = stream.average_rate or stream.guessed_rate
        self.fps = float(rate) if rate else 0.0
        self.size = (stream.codec_context.height, stream.codec_context.width)
        self.frames = self.container.decode(stream)
        self.index, self.last = -1, None

    def __call__(self, j: int) -> np.ndarray:
        while self.index < j:
            try:
                self.last = next(self.frames).to_ndarray(format="rgb24")
            except StopIteration:
                raise ValueError(f"the video has {self.index + 1} frames; its camera file describes more") from None
            self.index += 1
        return self.last

    def close(self) -> None:
        self.container.close()


def decode_video_with_cameras(item: SourceItem, config: Config, limit: int | None
                              ) -> tuple[np.ndarray, NativeGeometry, dict[str, Any]]:
    norm = config.normalise
    track = read_camera_file(Path(item.provenance["camera_file"]))
    video = _VideoFrames(str(item.path or item.uri))
    try:
        if not video.fps:
            raise ValueError("the video records no frame rate")
        k = track.intrinsics
        if tuple(track.image_hw) != tuple(video.size):  # intrinsics of another resolution of the same video
            k = rescale_intrinsics(k, track.image_hw, video.size)
        seq = FrameSequence(len(track.camera_c2w), video.fps, video, track.camera_c2w, k, video.size)
        frames, native = decode_sequence(seq, norm.fps, norm.height, norm.width, limit, norm.max_source_seconds)
    finally:
        video.close()
    facts = {"source_fps": video.fps, "duration_s": len(track.camera_c2w) / video.fps,
             "codec": f"video ({track.format} cameras)", "source_size": video.size}
    return frames, native, facts
