"""The cached windows of a ``cache:OUT`` source (``tasks/sources/cache.py``), and its first stage.

``LoadCachedClip`` turns a cache item into a clip in the form an ingest's stages leave it for the graph stage: the
item's accepted parent windows are linked into the new run's cache, verified and decoded; each window carries its
cached clean clip (``Window.clean_mp4``) and the parent sample it was made from, and the parent's rejected or
failed rows, stamped with the new run, ride along as the clip's carried rows (``Clip.carried``). A cached window
that fails verification becomes a ``failed`` row (reason ``cache_missing``/``cache_corrupt``).
"""
from __future__ import annotations

import errno
import json
import os
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np

from engine.run import RunContext, sha256_bytes, sha256_file
from engine.stage import ProcessingStage, Resources
from schemas.manifest import ManifestRow
from schemas.mp4 import decode_mp4
from schemas.sample_io import load_npy
from tasks.clip import Clip, Outcome, describe_error
from tasks.records import GroundTruth, SourceItem, Window
from tasks.sources.cache import CacheItem, window_id_of

REQUIRED_FILES = ("clean.mp4", "window.json")


class CacheError(RuntimeError):
    """One cached window cannot be used; ``reason`` is the manifest's reason code."""

    def __init__(self, reason: str, detail: str):
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


def verify_window_dir(directory: Path, skip: tuple[str, ...] = ()) -> dict[str, Any]:
    """window.json of a cached window after checking every checksummed file but ``skip``; raises CacheError."""
    if not directory.is_dir():
        raise CacheError("cache_missing", f"no cached window at {directory}")
    for name in REQUIRED_FILES:
        if not (directory / name).is_file():
            raise CacheError("cache_missing", f"{directory.name}/{name} is missing")
    try:
        record = json.loads((directory / "window.json").read_text())
        checksums = dict(record["checksums"])
    except (ValueError, KeyError, TypeError) as exc:
        raise CacheError("cache_corrupt", f"{directory.name}/window.json is unreadable ({exc})") from exc
    if "clean.mp4" not in checksums:
        raise CacheError("cache_corrupt", f"{directory.name}/window.json has no checksum for clean.mp4")
    for name, expected in sorted(checksums.items()):
        if name in skip:
            continue
        path = directory / name
        if not path.is_file():
            raise CacheError("cache_missing", f"{directory.name}/{name} is missing")
        if sha256_file(path) != expected:
            raise CacheError("cache_corrupt", f"{directory.name}/{name} does not match its checksum")
    return record


def _array(directory: Path, name: str, dtype: str) -> np.ndarray | None:
    path = directory / name
    return load_npy(path.read_bytes()).astype(dtype, copy=False) if path.is_file() else None


def load_window_dir(directory: Path, num_frames: int | None = None) -> tuple[Window, bytes]:
    """A verified cached window as a ``Window`` (frames decoded from clean.mp4) and the clean.mp4 bytes."""
    record = verify_window_dir(directory, skip=("clean.mp4",))
    clean = (directory / "clean.mp4").read_bytes()  # checked as read: the bytes packed are the bytes verified
    if sha256_bytes(clean) != record["checksums"]["clean.mp4"]:
        raise CacheError("cache_corrupt", f"{directory.name}/clean.mp4 does not match its checksum")
    try:
        frames = decode_mp4(clean)
    except Exception as exc:  # noqa: BLE001
        detail = f"{directory.name}/clean.mp4 does not decode ({describe_error(exc)})"
        raise CacheError("cache_corrupt", detail) from exc
    if num_frames is not None and len(frames) != num_frames:
        raise CacheError("cache_corrupt", f"{directory.name}/clean.mp4 holds {len(frames)} frames, not {num_frames}")
    item = SourceItem(**{k: record["item"].get(k) for k in ("clip_id", "source", "uri", "path")},
                      provenance=dict(record["item"].get("provenance") or {}))
    camera, intrinsics = _array(directory, "camera.npy", "float32"), _array(directory, "intrinsics.npy", "float32")
    truth = None
    if record.get("truth") is not None:
        t = record["truth"]
        extra = dict(t.get("extra") or {})  # the truth's facts, its clip number among them (GroundTruth.facts)
        index = extra.pop("index", None)
        truth = GroundTruth(camera_c2w=camera, intrinsics=intrinsics,  # type: ignore[arg-type]
                            state=_array(directory, "truth_state.npy", "float32"),
                            object_box=_array(directory, "truth_object_box.npy", "float32"),
                            loop_return_frame=t.get("loop_return_frame"), event_type=t.get("event_type"),
                            caption=t.get("caption"), index=None if index is None else int(index), extra=extra)
    box = record.get("dynamic_box")
    window = Window(
        item=item, index=int(record["index"]), start_frame=int(record["start_frame"]), frames=frames,
        span_s=(float(record["span_s"][0]), float(record["span_s"][1])), truth=truth, camera_c2w=camera,
        intrinsics=intrinsics, depth=_array(directory, "depth.npy", "float16"),
        depth_conf=_array(directory, "depth_conf.npy", "float16"), geometry=dict(record.get("geometry") or {}),
        dynamic_box=tuple(int(v) for v in box) if box else None,  # type: ignore[arg-type]
        scores={k: float(v) for k, v in (record.get("scores") or {}).items()}, tags=list(record.get("tags") or []),
        vlm=record.get("vlm"), caption=record.get("caption") or "")
    if window.window_id != directory.name:
        raise CacheError("cache_corrupt", f"{directory.name}/window.json describes window {window.window_id}")
    return window, clean


def load_cached_windows(source_out: Path, failures: dict[str, str] | None = None) -> list[Window]:
    """Every verified cached window of a run (each holds 81 decoded frames: about 100 MB). A window that fails
    verification is left out and, when ``failures`` is given, recorded there as ``window_id -> "reason: detail"``."""
    windows = []
    for directory in sorted((Path(source_out) / "cache" / "windows").iterdir()):
        if not directory.is_dir():
            continue
        try:
            windows.append(load_window_dir(directory)[0])
        except CacheError as exc:
            if failures is not None:
                failures[directory.name] = str(exc)
    return windows


def _link_or_copy(src: Path, dst: Path) -> None:
    try:
        os.link(src, dst)
    except OSError as exc:
        if exc.errno not in (errno.EXDEV, errno.EPERM, errno.EMLINK):
            raise
        shutil.copy2(src, dst)


def link_window(parent_out: Path, window_id: str, run: RunContext) -> Path:
    """The new run's cache entry for a window: hard links to the parent's files (a copy only across file systems),
    renamed into place at once. No byte is duplicated, and the new run is self-contained."""
    src = parent_out / "cache" / "windows" / window_id
    dst, tmp = run.windows / window_id, run.tmp / f"window-{window_id}"
    if not src.is_dir():
        raise CacheError("cache_missing", f"no cached window {window_id} in {parent_out}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for path in src.iterdir():
        if path.is_file():
            _link_or_copy(path, tmp / path.name)
    shutil.rmtree(dst, ignore_errors=True)
    os.replace(tmp, dst)
    return dst


# -- the clip of a cache item -------------------------------------------------------------------------------------
def _cache_outcome(row: ManifestRow, exc: CacheError) -> Outcome:
    span = (row.source_start_s, row.source_end_s) if row.source_start_s is not None else None
    return Outcome("failed", exc.reason, window=row.window, error=exc.detail, stage="load-cache", span_s=span,
                   scores=dict(row.scores), tags=list(row.tags), parent_key=row.key)  # type: ignore[arg-type]


def carried_row(row: ManifestRow, run: RunContext) -> ManifestRow:
    """A parent row decided upstream (rejected or failed), as this run records it: unchanged but for the run."""
    return row.model_copy(update={"run_id": run.run_id, "config_hash": run.clip_hash, "shard": None, "seconds": 0.0})


def load_cached_clip(item: CacheItem, run: RunContext) -> Clip:
    """A cache item's clip: its accepted parent windows linked into the new run's cache, verified and decoded,
    each with its clean clip and parent sample; the parent's other rows carried."""
    started = time.perf_counter()
    clip = Clip(SourceItem(clip_id=item.clip_id, source=item.parent_source, uri=item.uri))
    for row in item.rows:
        if row.status != "accepted":
            clip.carried.append(carried_row(row, run))  # rejected/failed upstream: no cached window
            continue
        try:
            if not row.key or row.window is None:
                raise CacheError("cache_missing", "the parent's accepted row names no sample key or window")
            directory = link_window(Path(str(item.path)), window_id_of(row), run)
            try:
                window, clean = load_window_dir(directory, run.config.normalise.num_frames)
            except CacheError:
                shutil.rmtree(directory, ignore_errors=True)
                raise
        except CacheError as exc:
            clip.outcomes.append(_cache_outcome(row, exc))
            continue
        except Exception as exc:  # noqa: BLE001 - e.g. an unreadable parent file: this window's failure only
            clip.outcomes.append(_cache_outcome(row, CacheError("cache_error", describe_error(exc))))
            continue
        window.clean_mp4, window.parent_key, window.parent_run = clean, row.key, item.parent_run
        clip.windows.append(window)
    clip.timings["load-cache"] = time.perf_counter() - started
    return clip


class LoadCachedClip(ProcessingStage[CacheItem, Clip]):
    """A ``cache:`` item -> its clip, the cached windows loaded (the regenerate pipeline's first stage)."""

    name, input_type, output_type, resources = "load-cache", CacheItem, Clip, Resources(cpus=1.0)

    def process(self, item: CacheItem) -> Clip:
        return load_cached_clip(item, self.run)
