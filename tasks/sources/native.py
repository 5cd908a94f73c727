"""Sources that bring their own cameras (DL3DV scenes, manifest rows with a camera file): one shared path.

A source with native geometry is a *sequence* of source frames at a capture rate, each with an OpenCV
camera-to-world pose (any world frame, any scale), pinhole intrinsics in pixels of that frame, and maybe a depth
map. ``decode_sequence`` resamples it to the pipeline's fps (each output slot shows the source frame nearest in
time, ties to the later one: the rule ``tasks.video_io`` applies to videos), normalises the pixels with the
project's resize-to-cover and centre crop (``tasks.video_io.resize_cover_crop``) and maps the intrinsics through
exactly that resize and crop (``schemas.cameras.rescale_intrinsics``). The cameras of output frame k are those of
the source frame it shows, so pixels and poses never drift apart.

``cut_windows`` slices ``NativeGeometry`` per window (``window_geometry``: anchored so the window's frame 0 is the
identity); the geometry stage then keeps them (``backend: native``) and runs no estimator.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from fractions import Fraction

import cv2
import numpy as np

from schemas.cameras import rescale_intrinsics
from tasks.records import NativeGeometry
from tasks.video_io import cover_geometry, resize_cover_crop

# OpenGL/nerfstudio camera axes (x right, y up, z backward) <-> OpenCV (x right, y down, z forward).
GL_TO_CV = np.diag([1.0, -1.0, -1.0, 1.0])


def opengl_to_opencv(c2w_gl: np.ndarray) -> np.ndarray:
    """Camera-to-world with OpenGL camera axes -> OpenCV camera axes (the world frame is unchanged)."""
    return np.asarray(c2w_gl, np.float64) @ GL_TO_CV


def corner_to_centre_intrinsics(k: np.ndarray) -> np.ndarray:
    """COLMAP and nerfstudio put the image's top-left *corner* at (0, 0) (pixel i spans [i, i+1]); OpenCV and this
    project put pixel *centres* at integers. Same focal lengths, principal point shifted by half a pixel."""
    k = np.array(k, np.float64)
    k[..., 0, 2] -= 0.5
    k[..., 1, 2] -= 0.5
    return k


def resample_indices(num_source: int, capture_fps: float, fps: float, limit: int | None = None,
                     max_seconds: float | None = None) -> np.ndarray:
    """Source frame shown by each output frame: the nearest in time (ties to the later frame), exact arithmetic.

    Output frame k sits at k / fps; source frame j at j / capture_fps and stays until the next one, so the output
    covers the source's duration num_source / capture_fps."""
    if num_source < 1 or capture_fps <= 0:
        return np.zeros(0, np.int64)
    ratio = Fraction(capture_fps).limit_denominator(1_000_000) / Fraction(fps).limit_denominator(1_000_000)
    count = max(math.ceil(Fraction(num_source) / ratio - Fraction(1, 2)), 1)  # slots before the end, less half a slot
    if max_seconds is not None:
        count = min(count, int(max_seconds * fps))
    if limit is not None:
        count = min(count, limit)
    idx = [min(int(k * ratio + Fraction(1, 2)), num_source - 1) for k in range(count)]  # floor(k r + 1/2)
    return np.array(idx, np.int64)


def normalised_intrinsics(k: np.ndarray, source_hw: tuple[int, int], height: int, width: int) -> np.ndarray:
    """Intrinsics (...,3,3) of a ``source_hw`` frame -> those of the frame ``resize_cover_crop`` makes of it."""
    _, new_h, new_w, y0, x0 = cover_geometry(source_hw[0], source_hw[1], height, width)
    out = rescale_intrinsics(k, source_hw, (new_h, new_w))
    out[..., 0, 2] -= x0
    out[..., 1, 2] -= y0
    return out


def normalise_depth(depth: np.ndarray, height: int, width: int) -> np.ndarray:
    """A source depth map -> the normalised frame's grid (nearest: no depth is invented at edges)."""
    _, new_h, new_w, y0, x0 = cover_geometry(depth.shape[0], depth.shape[1], height, width)
    resized = cv2.resize(depth.astype(np.float32), (new_w, new_h), interpolation=cv2.INTER_NEAREST)
    return resized[y0:y0 + height, x0:x0 + width]


def window_geometry(native: NativeGeometry | None, window) -> None:  # noqa: ANN001 - tasks.records.Window
    """Give ``window`` its slice of the source's native cameras (no-op without them)."""
    if native is not None:
        window.camera_c2w, window.intrinsics, window.depth = native.window(window.start_frame, len(window.frames))


@dataclass
class FrameSequence:
    """Source frames with cameras. ``read(j)`` gives frame j as RGB uint8 (H,W,3) at ``source_hw``."""

    count: int
    capture_fps: float
    read: Callable[[int], np.ndarray]
    camera_c2w: np.ndarray  # (count,4,4) OpenCV c2w
    intrinsics: np.ndarray  # (count,3,3) OpenCV pixel-centre convention, pixels of ``source_hw``
    source_hw: tuple[int, int]
    distortion: np.ndarray | None = None  # OpenCV (k1,k2,p1,p2[,k3]) when not all zero: frames are undistorted
    read_depth: Callable[[int], np.ndarray] | None = None  # z-depth of frame j in the poses' units


def decode_sequence(seq: FrameSequence, fps: int, height: int, width: int, limit: int | None = None,
                    max_seconds: float | None = None) -> tuple[np.ndarray, NativeGeometry]:
    """Resample to ``fps``, normalise the pixels and map the intrinsics through the same resize and crop."""
    picks = resample_indices(seq.count, seq.capture_fps, fps, limit, max_seconds)
    if len(picks) == 0:
        raise ValueError("the sequence has no frame")
    frames = np.empty((len(picks), height, width, 3), np.uint8)
    cache: dict[int, np.ndarray] = {}
    for k, j in enumerate(picks):
        j = int(j)
        if j not in cache:
            image = seq.read(j)
            if image.shape[:2] != tuple(seq.source_hw):
                raise ValueError(f"frame {j} is {image.shape[1]}x{image.shape[0]}, the cameras describe "
                                 f"{seq.source_hw[1]}x{seq.source_hw[0]}")
            if seq.distortion is not None:
                image = cv2.undistort(image, seq.intrinsics[j], seq.distortion)  # keeps K: pinhole from here on
            cache = {j: resize_cover_crop(image, height, width)[0]}  # only the last frame can repeat
        frames[k] = cache[j]
    depth = None
    if seq.read_depth is not None:
        depth = np.stack([normalise_depth(seq.read_depth(int(j)), height, width) for j in picks])
    native = NativeGeometry(camera_c2w=np.asarray(seq.camera_c2w, np.float64)[picks],
                            intrinsics=normalised_intrinsics(seq.intrinsics[picks], seq.source_hw, height, width),
                            depth=depth, source_index=picks)
    return frames, native


def image_reader(paths: Sequence[str]) -> Callable[[int], np.ndarray]:
    """``read(j)``: image file j as RGB uint8; a missing or unreadable file raises with its name."""

    def read(j: int) -> np.ndarray:
        image = cv2.imread(str(paths[j]), cv2.IMREAD_COLOR)
        if image is None:
            raise ValueError(f"cannot read image {paths[j]}")
        return image[..., ::-1]

    return read
