"""Depth Anything 3 backend: cameras and depth in the training conventions.

DA3 facts this relies on (depth_anything_3 0.1.1, read from its source):

- ``inference(frames, process_res=R, process_res_method="upper_bound_resize")`` resizes each frame so its
  longest side is ``R`` (``round`` of the scaled short side), then resizes again so both sides are the nearest
  multiple of 14: a plain, possibly anisotropic resize, no crop. 480x832 at R=504 -> 294x504. The ``*_crop``
  methods centre-crop to a multiple of 14 instead of resizing. ``da3_processed_geometry`` mirrors both.
- Outputs: ``extrinsics`` (N,3,4) world-to-camera, OpenCV axes, world = the model's reference view (not
  necessarily frame 0; views are reordered internally and restored); ``intrinsics`` (N,3,3) in processed pixels
  with the principal point at ``(W/2, H/2)`` (pixel-corner convention); ``depth`` / ``conf`` (N,h,w) z-depth in
  the same (arbitrary) units as the translations.

Conversion: ``c2w = anchor_to_first(w2c_to_c2w(extrinsics))``; intrinsics shifted by -0.5 px to OpenCV's
pixel-centre convention, then mapped to 480x832 with ``schemas.cameras.rescale_intrinsics`` (inverse of DA3's
resize / crop). Depth and confidence are returned at the pack resolution 120x208 (nearest-neighbour
resampling of the processed maps, so depth values are never blended across edges); depth shares the units of
``camera_c2w``'s translations.

With ``subset_frames = k > 0`` DA3 runs on k evenly spaced frames (always 0 and N-1) and the rest is filled:
slerp rotations, linear camera centres and intrinsics, nearest key frame's depth.
"""
from __future__ import annotations

import os
import time

import cv2
import numpy as np

from schemas.cameras import anchor_to_first, rescale_intrinsics, uncrop_intrinsics, w2c_to_c2w
from schemas.config import GeometryConfig
from schemas.constants import DEPTH_HEIGHT, DEPTH_WIDTH
from tasks.geometry.base import GeometryEstimate
from tasks.geometry.da3_tiny import build_tiny_da3, register_local_arch
from tasks.geometry.interpolate import interpolate_linear, interpolate_poses, key_frame_indices, nearest_key
from tasks.geometry.quality import apply_quality_gates, cross_check

__all__ = ["DA3Backend", "build_tiny_da3", "da3_intrinsics_to_frame", "da3_processed_geometry", "load_da3"]

PATCH = 14
RESIZE_METHOD = "upper_bound_resize"


def _nearest_multiple(x: int, p: int = PATCH) -> int:
    down = (x // p) * p
    return down + p if abs(down + p - x) <= abs(x - down) else down


def da3_processed_geometry(hw: tuple[int, int], process_res: int, method: str = RESIZE_METHOD
                           ) -> tuple[tuple[int, int], tuple[int, int, int, int] | None, tuple[int, int]]:
    """Mirror of DA3's ``InputProcessor`` for one frame size: (bound-resized hw, crop box in that image or None,
    final processed hw)."""
    h, w = hw
    side = max(h, w) if method.startswith("upper") else min(h, w)
    if side != process_res:
        scale = process_res / float(side)
        h, w = max(1, int(round(h * scale))), max(1, int(round(w * scale)))
    if method.endswith("resize"):
        return (h, w), None, (_nearest_multiple(h), _nearest_multiple(w))
    ch, cw = (h // PATCH) * PATCH, (w // PATCH) * PATCH
    return (h, w), ((h - ch) // 2, (w - cw) // 2, ch, cw), (ch, cw)


def da3_intrinsics_to_frame(K: np.ndarray, frame_hw: tuple[int, int], process_res: int,
                            method: str = RESIZE_METHOD) -> np.ndarray:
    """DA3 intrinsics (N,3,3) in processed pixels (pixel-corner convention) -> OpenCV pixels of ``frame_hw``."""
    resized_hw, crop, processed_hw = da3_processed_geometry(frame_hw, process_res, method)
    k = np.array(K, np.float64)
    k[..., 0, 2] -= 0.5
    k[..., 1, 2] -= 0.5
    if crop is None:  # resize methods: the processed image is the whole frame, resized (maybe anisotropically)
        return rescale_intrinsics(k, processed_hw, frame_hw)
    return rescale_intrinsics(uncrop_intrinsics(k, processed_hw, crop), resized_hw, frame_hw)


def load_da3(model: str):  # -> depth_anything_3.api.DepthAnything3 (imported lazily: heavy)
    """``DepthAnything3.from_pretrained(model)`` (hub id or local dir), on the GPU when there is one, eval mode.

    A local dir carrying its own architecture file (``build_tiny_da3``) is registered first.
    """
    import torch
    from depth_anything_3.api import DepthAnything3

    if not model:
        raise ValueError("geometry.model must name a DA3 checkpoint (local dir or hub id) for backend da3")
    if "DA3_LOG_LEVEL" not in os.environ:  # DA3 prints several INFO lines per call to stdout by default
        from depth_anything_3.utils.logger import LOG_LEVELS, logger

        logger.level = LOG_LEVELS["WARN"]
    register_local_arch(model)
    net = DepthAnything3.from_pretrained(model)
    return net.to("cuda" if torch.cuda.is_available() else "cpu").eval()


class DA3Backend:
    """Depth Anything 3 camera + depth estimator; the checkpoint is loaded once, in the constructor."""

    name = "da3"

    def __init__(self, config: GeometryConfig) -> None:
        self.config = config
        self.model = load_da3(config.model)
        self._classical = None
        if config.cross_check:
            from tasks.geometry.classical import ClassicalBackend

            self._classical = ClassicalBackend(config)

    def estimate(self, frames: np.ndarray) -> GeometryEstimate:
        """frames (N,H,W,3) uint8 RGB -> anchored OpenCV c2w, intrinsics in frame pixels, depth/conf at 120x208."""
        t0 = time.perf_counter()
        frames = np.asarray(frames)
        n, h, w = frames.shape[:3]
        keys = key_frame_indices(n, self.config.subset_frames)
        pred = self.model.inference([frames[i] for i in keys], process_res=self.config.process_res,
                                    process_res_method=RESIZE_METHOD)
        _, _, processed_hw = da3_processed_geometry((h, w), self.config.process_res)
        if tuple(pred.depth.shape[-2:]) != processed_hw:
            raise RuntimeError(f"DA3 processed {pred.depth.shape[-2:]}, expected {processed_hw}: resize logic changed")
        c2w_key = anchor_to_first(w2c_to_c2w(np.asarray(pred.extrinsics, np.float64)))
        k_key = da3_intrinsics_to_frame(pred.intrinsics, (h, w), self.config.process_res)
        c2w = interpolate_poses(c2w_key, keys, n)
        intrinsics = interpolate_linear(k_key, keys, n)
        nearest = nearest_key(keys, n)
        depth = self._to_pack(pred.depth)[nearest]
        conf = self._to_pack(pred.conf)[nearest] if pred.conf is not None else None
        quality = {"key_frames": float(len(keys)), "seconds": time.perf_counter() - t0}
        if conf is not None:
            quality["confidence_mean"] = float(np.nanmean(conf))
            quality["confidence_min"] = float(np.nanmin(np.nanmean(conf.reshape(n, -1), axis=1)))
        estimate = GeometryEstimate.from_raw(c2w, intrinsics, self.name, depth=depth, depth_conf=conf,
                                             quality=quality)
        if self._classical is not None:
            cross_check(estimate, self._classical, frames, self.config)
        return apply_quality_gates(estimate, self.config)

    @staticmethod
    def _to_pack(maps: np.ndarray) -> np.ndarray:
        maps = np.asarray(maps, np.float32)
        return np.stack([cv2.resize(m, (DEPTH_WIDTH, DEPTH_HEIGHT), interpolation=cv2.INTER_NEAREST)
                         for m in maps])
