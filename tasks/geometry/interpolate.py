"""Fill per-frame geometry from estimates at a subset of key frames (sorted indices, first 0, last N-1)."""
from __future__ import annotations

import cv2
import numpy as np


def key_frame_indices(num_frames: int, count: int) -> np.ndarray:
    """``count`` evenly spaced frame indices including 0 and ``num_frames - 1`` (all frames when count is 0 or
    at least ``num_frames``)."""
    if count <= 0 or count >= num_frames:
        return np.arange(num_frames)
    return np.unique(np.round(np.linspace(0, num_frames - 1, max(count, 2))).astype(int))


def _brackets(key_idx: np.ndarray, num_frames: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For every frame: left key slot, right key slot and the blend weight towards the right one."""
    frames = np.arange(num_frames)
    right = np.clip(np.searchsorted(key_idx, frames, side="left"), 1, len(key_idx) - 1)
    left = right - 1
    span = np.maximum(key_idx[right] - key_idx[left], 1)
    alpha = np.clip((frames - key_idx[left]) / span, 0.0, 1.0)
    return left, right, alpha


def interpolate_poses(c2w_key: np.ndarray, key_idx: np.ndarray, num_frames: int) -> np.ndarray:
    """Camera-to-world (K,4,4) at ``key_idx`` -> (N,4,4): rotations by slerp (constant angular velocity along the
    geodesic, ``R_a exp(alpha log(R_a^T R_b))``), camera centres linearly."""
    c2w_key = np.asarray(c2w_key, np.float64)
    if len(key_idx) == 1:
        return np.repeat(c2w_key, num_frames, axis=0)
    left, right, alpha = _brackets(np.asarray(key_idx), num_frames)
    out = np.tile(np.eye(4), (num_frames, 1, 1))
    for f in range(num_frames):
        ra, rb = c2w_key[left[f], :3, :3], c2w_key[right[f], :3, :3]
        rvec, _ = cv2.Rodrigues(ra.T @ rb)
        step, _ = cv2.Rodrigues(alpha[f] * rvec)
        out[f, :3, :3] = ra @ step
        out[f, :3, 3] = (1 - alpha[f]) * c2w_key[left[f], :3, 3] + alpha[f] * c2w_key[right[f], :3, 3]
    return out


def interpolate_linear(values: np.ndarray, key_idx: np.ndarray, num_frames: int) -> np.ndarray:
    """Per-key arrays (K,...) -> (N,...) by linear blending between bracketing keys (used for intrinsics)."""
    values = np.asarray(values, np.float64)
    if len(key_idx) == 1:
        return np.repeat(values, num_frames, axis=0)
    left, right, alpha = _brackets(np.asarray(key_idx), num_frames)
    shape = (num_frames,) + (1,) * (values.ndim - 1)
    return (1 - alpha).reshape(shape) * values[left] + alpha.reshape(shape) * values[right]


def nearest_key(key_idx: np.ndarray, num_frames: int) -> np.ndarray:
    """For every frame, the slot of the nearest key frame (ties to the earlier one); used for depth maps."""
    key_idx = np.asarray(key_idx)
    return np.abs(np.arange(num_frames)[:, None] - key_idx[None, :]).argmin(axis=1)
