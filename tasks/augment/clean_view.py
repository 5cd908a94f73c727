"""The clean clip of a crop-moving interruption (virtual camera loop, exit/entry) is rendered at the same crop as the
degraded one; its depth, depth confidence and intrinsics go through the same per-frame affines."""
from __future__ import annotations

from typing import Any

import cv2
import numpy as np

from schemas.constants import NUM_CHUNKS, chunk_frames
from tasks.augment.common import affine3
from tasks.records import Window

# Both clips get an IDR frame at every chunk's first frame: after the interval (whole chunks) the two encoders start
# from the same picture, so clean and degraded decode alike there (PSNR >= 38 dB), and each chunk decodes alone.
CHUNK_KEYFRAMES = tuple(chunk_frames(c)[0] for c in range(1, NUM_CHUNKS))


def warp_maps(maps: np.ndarray, affines: np.ndarray, hw: tuple[int, int]) -> np.ndarray:
    """(N,h,w) per-pixel maps (depth) at any resolution through frame-pixel affines; nearest, so no depth is
    invented at edges."""
    n, mh, mw = maps.shape
    h, w = hw
    rx, ry = mw / w, mh / h
    S = np.array([[rx, 0.0, 0.5 * rx - 0.5], [0.0, ry, 0.5 * ry - 0.5], [0.0, 0.0, 1.0]])
    out = np.empty_like(maps)
    for t in range(n):
        A = (S @ affine3(affines[t]) @ np.linalg.inv(S))[:2]
        out[t] = cv2.warpAffine(maps[t], A, (mw, mh), flags=cv2.INTER_NEAREST, borderMode=cv2.BORDER_REPLICATE)
    return out


def cropped_view(window: Window, aug: Any) -> tuple[np.ndarray | None, np.ndarray | None, np.ndarray | None] | None:
    """(depth, depth_conf, intrinsics) of the cropped clean clip, or None when the clean clip is the window's."""
    affines = getattr(aug, "clean_affines", None)
    if affines is None or aug.clean_frames is None:
        return None
    hw = window.frames.shape[1:3]
    depth = None if window.depth is None else warp_maps(np.asarray(window.depth, np.float32), affines, hw)
    conf = None if window.depth_conf is None else warp_maps(np.asarray(window.depth_conf, np.float32), affines, hw)
    intrinsics = None
    if window.intrinsics is not None:
        intrinsics = (affine3(affines) @ np.asarray(window.intrinsics, np.float64)).astype(np.float32)
    return depth, conf, intrinsics
