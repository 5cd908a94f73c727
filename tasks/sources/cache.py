"""The ``cache:OUT`` source: a finished run's window cache, read back as the input of a new run (regenerate).

A finished run OUT keeps, per accepted window, ``OUT/cache/windows/<window_id>/``: the normalised clean clip as
encoded (``clean.mp4``), its cameras/intrinsics/depth (depth already at the packed 120x208 float16), the source's
truth arrays and ``window.json`` (item, filter scores, tags, caption, VLM verdict, geometry record, checksums).

``cache_listing`` lists OUT's inputs (one ``SourceItem`` per clip of its manifest, ``source="cache"``, carrying
the parent's rows for that clip). The ingest pipeline's first stage (``tasks.decode.DecodeSource``) hands such an
item to ``load_cached_clip`` instead of decoding: the clip's accepted windows are linked into the new run's cache,
verified and decoded, and the clip's ``skip_stages`` names the stages whose results the cache holds
(``CACHED_STAGES``), so the executor passes it through them. The graph stage draws new interruptions and the write
stage (``tasks.samples.write_samples``) reuses the cached clean clip (``CachedClip``): only the degraded clip is
encoded.

A cached window that fails verification becomes a ``failed`` row (reason ``cache_missing``/``cache_corrupt``);
the parent's rejected or failed rows are carried into the new manifest.
"""
from __future__ import annotations

import errno
import json
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from engine.run import RunContext, sha256_bytes, sha256_file
from schemas.config import Config, load_config
from schemas.manifest import ManifestRow
from schemas.mp4 import decode_mp4
from schemas.sample_io import load_npy
from tasks.clip import Clip, Outcome, describe_error
from tasks.publish.manifest import read_manifest
from tasks.records import GroundTruth, SourceItem, Window

# The ingest stages whose results a cached window holds: a clip loaded from a cache passes through them.
CACHED_STAGES = frozenset({"detect-scene-cuts", "cut-windows", "source-facts", "measure-motion", "judge-events",
                           "estimate-cameras"})
# Config sections the cached windows were built with: a run from the cache may not change them (a new ingest may).
# ``encode`` is one because the cached clean clip is reused byte for byte: a new crf/preset would give a sample
# whose clean and degraded clips were encoded differently.
CACHED_SECTIONS = ("normalise", "prefilter", "vlm", "geometry", "synthetic", "sources", "encode")
REQUIRED_FILES = ("clean.mp4", "window.json")


class RegenerateError(RuntimeError):
    """The request cannot be served from the parent's cache (unfinished parent, wrong OUT, cache-bound config)."""


class CacheError(RuntimeError):
    """One cached window cannot be used; ``reason`` is the manifest's reason code."""

    def __init__(self, reason: str, detail: str):
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


# -- the parent run -----------------------------------------------------------------------------------------------
@dataclass
class Parent:
    out: Path
    run_id: str
    items: list[SourceItem]  # in manifest order, one per input
    rows: dict[str, list[ManifestRow]] = field(default_factory=dict)  # clip id -> the parent's rows

    @property
    def windows(self) -> Path:
        return self.out / "cache" / "windows"


def window_id_of(row: ManifestRow) -> str:
    """The window id of a manifest row (``Window.window_id``); the sample key is its lower-case form."""
    return f"{row.clip_id}-w{row.window:02d}"


def finished_run(source_out: str | Path) -> tuple[Path, str]:
    """OUT (resolved) and its run id; refuses a folder that is not a finished remind-curate run."""
    out = Path(source_out).resolve()
    if not (out / "run.json").exists():
        raise RegenerateError(f"{out} is not a remind-curate output (no run.json)")
    if not (out / "manifest.parquet").exists():
        raise RegenerateError(f"{out} has no manifest.parquet: the run did not finish. Rerun its ingest command "
                              f"to resume it, then regenerate")
    return out, str(json.loads((out / "run.json").read_text())["run_id"])


def read_parent(source_out: str | Path) -> Parent:
    out, run_id = finished_run(source_out)
    parent = Parent(out, run_id, [])
    for row in read_manifest(out / "manifest.parquet"):
        if row.clip_id not in parent.rows:
            parent.rows[row.clip_id] = []
            parent.items.append(SourceItem(clip_id=row.clip_id, source=row.source, uri=row.uri))
        parent.rows[row.clip_id].append(row)
    return parent


def changed_keys(old: Any, new: Any, prefix: str) -> list[str]:
    if isinstance(old, dict) and isinstance(new, dict):
        keys: list[str] = []
        for k in sorted(set(old) | set(new), key=str):
            keys += changed_keys(old.get(k), new.get(k), f"{prefix}.{k}")
        return keys
    return [] if old == new else [prefix]


def check_cached_config(source_out: str | Path, config: Config) -> None:
    """Refuses ``config`` when it changes a setting OUT's cached windows were built with (naming each key)."""
    old, new = load_config(Path(source_out) / "config.yaml").model_dump(mode="json"), config.model_dump(mode="json")
    changed = [k for s in CACHED_SECTIONS for k in changed_keys(old[s], new[s], s)]
    if changed:
        raise RegenerateError(
            f"the config changes settings the cached windows of {source_out} were built with ({', '.join(changed)}); "
            f"a run from its cache only redoes augmentation (augment, seed, pack). Run a new `remind-curate ingest` "
            f"from the original source instead")


def cache_items(parent: Parent) -> list[SourceItem]:
    """One ``source="cache"`` item per input of the parent: ``path`` is the parent OUT, ``provenance`` its rows."""
    return [SourceItem(clip_id=item.clip_id, source="cache", uri=item.uri, path=str(parent.out),
                       provenance={"parent_run": parent.run_id, "source": item.source,
                                   "rows": [r.model_dump(mode="json") for r in parent.rows[item.clip_id]]})
            for item in parent.items]


def cache_listing(source_out: str | Path, config: Config) -> tuple[list[SourceItem], dict[str, Any]]:
    """The items of ``cache:OUT`` and the listing's facts, after checking ``config`` against OUT's."""
    parent = read_parent(source_out)
    check_cached_config(parent.out, config)
    return cache_items(parent), {"parent": str(parent.out), "parent_run": parent.run_id}


# -- cached windows -----------------------------------------------------------------------------------------------
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
        truth = GroundTruth(camera_c2w=camera, intrinsics=intrinsics,  # type: ignore[arg-type]
                            state=_array(directory, "truth_state.npy", "float32"),
                            object_box=_array(directory, "truth_object_box.npy", "float32"),
                            loop_return_frame=t.get("loop_return_frame"), event_type=t.get("event_type"),
                            caption=t.get("caption"), extra=dict(t.get("extra") or {}))
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
@dataclass
class CachedClip:
    """What the write stage needs of a clip loaded from a cache (``clip.notes["cache"]``)."""

    parent_run: str
    parent_keys: dict[int, str] = field(default_factory=dict)  # window index -> the parent's sample key
    clean_mp4: dict[str, bytes] = field(default_factory=dict)  # window id -> the verified cached clean clip
    carried: list[ManifestRow] = field(default_factory=list)  # the parent's rejected/failed rows

    def parent_key(self, index: int | None) -> str | None:
        return self.parent_keys.get(index) if index is not None else None

    def stage_args(self, window: Window) -> dict[str, Any]:
        """``encode_and_stage`` arguments: the cached clean clip (linked, not re-encoded) and the parent sample."""
        return {"clean_mp4": self.clean_mp4.pop(window.window_id), "parent_key": self.parent_key(window.index),
                "parent_run": self.parent_run}

    def rows(self, rows: list[ManifestRow], run: RunContext) -> list[ManifestRow]:
        """The clip's rows with the parent's carried rows, in window order."""
        rows = rows + [row.model_copy(update={"run_id": run.run_id, "config_hash": run.clip_hash, "shard": None,
                                              "seconds": 0.0}) for row in self.carried]
        return sorted(rows, key=lambda r: (r.window is None, r.window if r.window is not None else 0))


def _cache_outcome(row: ManifestRow, exc: CacheError) -> Outcome:
    span = (row.source_start_s, row.source_end_s) if row.source_start_s is not None else None
    return Outcome("failed", exc.reason, window=row.window, error=exc.detail, stage="load-cache",
                   span_s=span, scores=dict(row.scores), tags=list(row.tags))  # type: ignore[arg-type]


def load_cached_clip(item: SourceItem, run: RunContext) -> Clip:
    """A cache item's clip: its accepted parent windows linked into the new run's cache, verified and decoded;
    it skips the stages whose results the cache holds."""
    started = time.perf_counter()
    source = SourceItem(clip_id=item.clip_id, source=str(item.provenance.get("source", "cache")), uri=item.uri)
    cache = CachedClip(parent_run=str(item.provenance["parent_run"]))
    clip = Clip(source, skip_stages=CACHED_STAGES, notes={"cache": cache})
    for row in (ManifestRow.model_validate(r) for r in item.provenance.get("rows", [])):
        if row.status != "accepted":
            cache.carried.append(row)  # rejected/failed upstream: no cached window, the row carries over
            continue
        try:
            if not row.key or row.window is None:
                raise CacheError("cache_missing", "the parent's accepted row names no sample key or window")
            cache.parent_keys[row.window] = row.key
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
        clip.windows.append(window)
        cache.clean_mp4[window.window_id] = clean
    clip.timings["load-cache"] = time.perf_counter() - started
    return clip
