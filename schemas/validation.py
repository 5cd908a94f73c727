"""Checking one packed sample against the format: every problem as one precise sentence."""
from __future__ import annotations

from typing import Any

import numpy as np

from schemas.constants import FPS, HEIGHT, NUM_FRAMES, WIDTH
from schemas.graph import InterruptionKind
from schemas.graph_checks import graph_problems
from schemas.mp4 import probe_mp4
from schemas.sample import ENTRIES
from schemas.sample_io import Sample, checksum_problems, decode_sample
from schemas.untrusted import UntrustedError, load_json, npy_header
from schemas.version import at_least, parse_version

ALLOWED_TYPES = ("mp4", "json", "npy", "txt")  # never pickles: a reader must not execute what it loads
MP4_MAX_SECONDS = 30.0  # an 81-frame 480x832 clip decodes in about 0.2 s on one core


def _check_unknown(extra: dict[str, bytes]) -> list[str]:
    """Entries of a newer minor version are kept, not read: only proven harmless (no pickle, bounded JSON)."""
    problems = []
    for ext, data in sorted(extra.items()):
        try:
            if ext.endswith(".npy"):
                npy_header(data)
            elif ext.endswith(".json"):
                load_json(data)
        except UntrustedError as exc:
            problems.append(f"{ext}: {exc}")
    return problems


def _check_mp4(name: str, data: bytes) -> list[str]:
    try:
        info = probe_mp4(data, max_frames=NUM_FRAMES, max_seconds=MP4_MAX_SECONDS, max_pixels=4 * HEIGHT * WIDTH)
    except Exception as exc:  # any decoder error is a finding, not a crash
        return [f"{name} does not decode: {type(exc).__name__}: {exc}"]
    problems = []
    if info.more:
        problems.append(f"{name} has more than {NUM_FRAMES} frames (decoding stopped there)")
    elif info.frames != NUM_FRAMES:
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


def _check_caption(meta: Any, has_txt: bool) -> list[str]:
    """A sample without txt is valid (no caption); when meta says where captions come from, txt must agree."""
    source = getattr(meta, "caption_source", None)
    if source == "none" and has_txt:
        return ["txt present but meta.caption_source is none"]
    if source == "none" and not getattr(meta, "caption_note", None):
        return ["meta.caption_source is none without a caption_note saying why"]
    if source not in (None, "none") and not has_txt:
        return [f"meta.caption_source is {source} but txt is missing"]
    return []


def check_sample(raw: dict[str, Any], decode_video: bool = True) -> list[str]:
    """All problems of one raw sample (tar members by extension). Empty list = valid."""
    key = raw.get("__key__", "?")
    problems = [str(p) for p in raw.get("__problems__", ())]  # what the tar reader refused to read, by name
    skipped = {f"missing required entry '{ext}'" for ext in raw.get("__skipped__", ())}
    bad = [k for k in raw if not k.startswith("__") and f".{k}".rsplit(".", 1)[-1] not in ALLOWED_TYPES]
    problems += [f"entry '{k}' has a forbidden type (only .mp4/.json/.npy/.txt)" for k in bad]
    entries = {k: v for k, v in raw.items() if not k.startswith("__") and k not in bad}
    problems += checksum_problems(entries)
    try:
        sample = decode_sample({"__key__": key, **entries})
    except ValueError as exc:
        return problems + ([] if str(exc) in skipped else [str(exc)])
    problems += _check_unknown(sample.extra)
    if sample.meta.key != key:
        problems.append(f"meta.json key '{sample.meta.key}' differs from __key__ '{key}'")
    problems += [f"graph.json: {p}" for p in sample.graph.problems()]
    # Rules added in 1.1.0 bind documents written since (each by its own schema_version): older minors stay valid.
    since_1_1 = at_least(parse_version(sample.meta.schema_version), "1.1.0")
    if at_least(parse_version(sample.graph.schema_version), "1.1.0"):
        problems += [f"graph.json: {p}" for p in graph_problems(sample.graph)]  # issue 12: chunks, gaps, hidden interval
    if since_1_1 and (sample.degraded_mp4 is not None) != bool(sample.degraded_caption):
        problems.append("degraded.txt must be present exactly when degraded.mp4 is")
    kind = sample.graph.interruption.kind
    if sample.meta.interruption != kind:
        problems.append(f"meta.json interruption '{sample.meta.interruption.value}' differs from graph's "
                        f"'{kind.value}'")
    if kind is InterruptionKind.none and sample.degraded_mp4 is not None:
        problems.append("degraded.mp4 present but the interruption kind is none")
    if kind is not InterruptionKind.none and sample.degraded_mp4 is None:
        problems.append(f"degraded.mp4 missing for interruption kind {kind.value}")
    problems += _check_arrays(sample)
    problems += _check_caption(sample.meta, "txt" in raw)
    if decode_video:
        problems += _check_mp4("mp4", sample.mp4)
        if sample.degraded_mp4 is not None:
            problems += _check_mp4("degraded.mp4", sample.degraded_mp4)
    return problems
