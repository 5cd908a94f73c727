"""Checking one packed sample against the format: every problem as one precise sentence."""
from __future__ import annotations

from typing import Any

import numpy as np

from schemas.constants import FPS, HEIGHT, NUM_FRAMES, WIDTH
from schemas.graph import InterruptionKind
from schemas.mp4 import probe_mp4
from schemas.sample import ENTRIES
from schemas.sample_io import Sample, decode_sample

ALLOWED_TYPES = ("mp4", "json", "npy", "txt")  # never pickles: a reader must not execute what it loads


def _check_mp4(name: str, data: bytes) -> list[str]:
    try:
        info = probe_mp4(data)
    except Exception as exc:  # any decoder error is a finding, not a crash
        return [f"{name} does not decode: {type(exc).__name__}: {exc}"]
    problems = []
    if info.frames != NUM_FRAMES:
        problems.append(f"{name} has {info.frames} frames, expected {NUM_FRAMES}")
    if abs(info.fps - FPS) > 1e-3:
        problems.append(f"{name} is {info.fps:g} fps, expected {FPS}")
    if (info.height, info.width) != (HEIGHT, WIDTH):
        problems.append(f"{name} is {info.height}x{info.width}, expected {HEIGHT}x{WIDTH}")
    if info.codec != "h264":
        problems.append(f"{name} codec is {info.codec}, expected h264")
    return problems


def _check_arrays(sample: Sample) -> list[str]:
    problems = []
    arrays = {"camera.npy": sample.camera, "intrinsics.npy": sample.intrinsics,
              "degraded_camera.npy": sample.degraded_camera, "degraded_intrinsics.npy": sample.degraded_intrinsics,
              "depth.npy": sample.depth, "depth_conf.npy": sample.depth_conf}
    for ext, array in arrays.items():
        if array is None:
            continue
        spec = ENTRIES[ext]
        if str(array.dtype) != spec.dtype:
            problems.append(f"{ext} dtype is {array.dtype}, expected {spec.dtype}")
        if tuple(array.shape) != spec.shape:
            problems.append(f"{ext} shape is {tuple(array.shape)}, expected {spec.shape}")
        elif not np.isfinite(array.astype(np.float64)).all():
            problems.append(f"{ext} has non-finite values")
    if (sample.camera is None) != (sample.intrinsics is None):
        problems.append("camera.npy and intrinsics.npy must be present together")
    if sample.camera is not None and sample.camera.shape == ENTRIES["camera.npy"].shape:
        cam = sample.camera.astype(np.float64)
        if not np.allclose(cam[0], np.eye(4), atol=1e-5):
            problems.append("camera.npy frame 0 is not the identity")
        rot = cam[:, :3, :3]
        err = np.abs(rot @ rot.transpose(0, 2, 1) - np.eye(3)).max()
        if err > 1e-3:
            problems.append(f"camera.npy rotations are not orthonormal (max error {err:.2e})")
        if not np.allclose(cam[:, 3], [0, 0, 0, 1], atol=1e-6):
            problems.append("camera.npy bottom rows are not [0, 0, 0, 1]")
    if sample.intrinsics is not None and sample.intrinsics.shape == ENTRIES["intrinsics.npy"].shape:
        k = sample.intrinsics
        if (k[:, 0, 0] <= 0).any() or (k[:, 1, 1] <= 0).any():
            problems.append("intrinsics.npy has non-positive focal lengths")
    if (sample.degraded_camera is None) != (sample.degraded_intrinsics is None):
        problems.append("degraded_camera.npy and degraded_intrinsics.npy must be present together")
    if sample.degraded_camera is not None and sample.degraded_mp4 is None:
        problems.append("degraded_camera.npy present without degraded.mp4")
    if sample.depth is not None and sample.meta.geometry.has_depth is False:
        problems.append("depth.npy present but meta.geometry.has_depth is false")
    if sample.camera is not None and not sample.meta.geometry.known:
        problems.append("camera.npy present but meta.geometry.known is false")
    if sample.camera is None and sample.meta.geometry.known:
        problems.append("meta.geometry.known is true but camera.npy is missing")
    return problems


def check_sample(raw: dict[str, Any], decode_video: bool = True) -> list[str]:
    """All problems of one raw sample (tar members by extension). Empty list = valid."""
    key = raw.get("__key__", "?")
    bad = [k for k in raw if not k.startswith("__") and f".{k}".rsplit(".", 1)[-1] not in ALLOWED_TYPES]
    problems = [f"entry '{k}' has a forbidden type (only .mp4/.json/.npy/.txt)" for k in bad]
    try:
        sample = decode_sample({k: v for k, v in raw.items() if k not in bad})
    except ValueError as exc:
        return problems + [str(exc)]
    if sample.meta.key != key:
        problems.append(f"meta.json key '{sample.meta.key}' differs from __key__ '{key}'")
    problems += [f"graph.json: {p}" for p in sample.graph.problems()]
    kind = sample.graph.interruption.kind
    if sample.meta.interruption != kind:
        problems.append(f"meta.json interruption '{sample.meta.interruption.value}' differs from graph's "
                        f"'{kind.value}'")
    if kind is InterruptionKind.none and sample.degraded_mp4 is not None:
        problems.append("degraded.mp4 present but the interruption kind is none")
    if kind is not InterruptionKind.none and sample.degraded_mp4 is None:
        problems.append(f"degraded.mp4 missing for interruption kind {kind.value}")
    problems += _check_arrays(sample)
    if decode_video:
        problems += _check_mp4("mp4", sample.mp4)
        if sample.degraded_mp4 is not None:
            problems += _check_mp4("degraded.mp4", sample.degraded_mp4)
    return problems
