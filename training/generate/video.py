"""Writing generated frames as H.264 MP4 (PyAV)."""
from __future__ import annotations

from pathlib import Path

import av
import numpy as np


def write_mp4(frames: np.ndarray, path: Path, fps: int = 16) -> Path:
    """(T, H, W, 3) uint8 RGB -> ``path`` (yuv420p H.264; H and W must be even)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp.mp4")
    with av.open(str(tmp), mode="w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.height, stream.width = frames.shape[1], frames.shape[2]
        stream.pix_fmt = "yuv420p"
        stream.options = {"crf": "18", "preset": "veryfast"}
        for frame in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    tmp.rename(path)
    return path
