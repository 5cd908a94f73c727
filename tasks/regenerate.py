"""Regenerate: new augmentations for a finished run, from its window cache alone.

A finished run OUT keeps, per accepted window, ``OUT/cache/windows/<window_id>/``: the normalised clean clip as
encoded (``clean.mp4``), its cameras/intrinsics/depth (depth already at the packed 120x208 float16), the source's
truth arrays and ``window.json`` (item, filter scores, tags, caption, VLM verdict, geometry record, checksums).
Everything the augmentation families read is there, so a regenerate run never reads a source, never runs a
pre-filter, the VLM judge or a geometry backend (nothing on this path imports ``tasks.decode``,
``tasks.prefilter``, ``tasks.judge`` or ``tasks.cameras``). It decodes each cached clean clip once, draws new
interruptions with the new ``augment`` settings, and encodes only the degraded clip.

Decisions:
- Configuration: the parent's ``OUT/config.yaml`` is the base and ``--config`` is merged over it. A change to a
  section the cache was built with (``CACHED_SECTIONS``) is refused: those need a new ingest. ``encode`` is in
  the list because the cached clean clip is reused byte for byte: a new crf/preset would give a sample whose clean
  and degraded clips were encoded differently.
- The new run's window cache entry is a set of hard links to the parent's files (a copy only across file
  systems): no byte is duplicated, and OUT2 is self-contained (it can be the parent of a further regenerate, and
  survives deleting OUT). Checksums are verified on the linked files, so what is packed is what was verified; a
  window that fails verification becomes a ``failed`` row (reason ``cache_missing`` / ``cache_corrupt``).
- The sample's ``mp4`` is the cached ``clean.mp4`` (``encode_and_stage(clean_mp4=...)`` hard-links it): the new
  shard's clean clips are bit-identical to the parent's. Keys are the parent's keys (same window ids);
  ``meta.parent_key``/``parent_run`` and the manifest's ``parent_key`` name the parent sample.
- Depth stays at the cached 120x208: ``downsample_depth`` on an array already at that size is an identity
  (nearest-neighbour resize to the same shape), so the packed depth equals the parent's bit for bit.
- Augmentation reads the frames decoded from the cached (lossy) clean clip, i.e. exactly the clean clip the sample
  ships; an ingest augments the pre-encode frames, so degraded pixels differ from an ingest with the same config
  by encoding noise only. Parent rows that were rejected or failed upstream are carried into the new manifest.
- The parent is held with a shared lock for the whole run: several regenerates may read it at once, an ingest
  resuming it is refused meanwhile (``open_run`` takes an exclusive lock).
"""
from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from prefect import task
from prefect.cache_policies import NO_CACHE

from schemas.config import Config, load_config
from schemas.manifest import ManifestRow
from schemas.mp4 import decode_mp4
from schemas.sample_io import load_npy
from tasks.manifest import read_manifest
from tasks.records import GroundTruth, SourceItem, Window
from tasks.run import RunContext, sha256_bytes, sha256_file
from tasks.samples import commit_clip, encode_and_stage, manifest_row
from tasks.stage import Clip, Outcome, describe_error, stage_task

# Sections the cached windows were built with: changing any of them needs a new ingest, not a regenerate.
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


# -- configuration ------------------------------------------------------------------------------------------------
def _changed_keys(old: Any, new: Any, prefix: str) -> list[str]:
    if isinstance(old, dict) and isinstance(new, dict):
        keys: list[str] = []
        for k in sorted(set(old) | set(new), key=str):
            keys += _changed_keys(old.get(k), new.get(k), f"{prefix}.{k}")
        return keys
    return [] if old == new else [prefix]


def regenerate_config(source_out: str | Path, config_path: str | Path | None) -> Config:
    """The parent's config with ``config_path``'s keys merged over it; refuses changes to ``CACHED_SECTIONS``."""
    source_out = Path(source_out)
    parent_yaml = source_out / "config.yaml"
    if not parent_yaml.exists():
        raise RegenerateError(f"{source_out} is not a remind-curate output (no config.yaml)")
    base = load_config(parent_yaml)
    override: dict[str, Any] = {}
    if config_path is not None:
        loaded = yaml.safe_load(Path(config_path).read_text()) or {}
        if not isinstance(loaded, dict):
            raise ValueError(f"{config_path}: a config file must be a YAML mapping, got {type(loaded).__name__}")
        override = loaded
    config = load_config(parent_yaml, overrides=override)
    old, new = base.model_dump(mode="json"), config.model_dump(mode="json")
    changed = [k for s in CACHED_SECTIONS for k in _changed_keys(old[s], new[s], s)]
    if changed:
        raise RegenerateError(
            f"--config changes settings the cached windows of {source_out} were built with ({', '.join(changed)}); "
            f"regenerate only redoes augmentation (augment, seed, pack). Run a new `remind-curate ingest` instead")
    return config


@task(name="load-regenerate-config", cache_policy=NO_CACHE, persist_result=False)
def load_regenerate_config(source_out: str, config_path: str | None) -> Config:
    return regenerate_config(source_out, config_path)


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


def read_parent(source_out: str | Path) -> Parent:
    out = Path(source_out).resolve()
    record_path, manifest = out / "run.json", out / "manifest.parquet"
    if not record_path.exists():
        raise RegenerateError(f"{out} is not a remind-curate output (no run.json)")
    if not manifest.exists():
        raise RegenerateError(f"{out} has no manifest.parquet: the run did not finish. Rerun its ingest command "
                              f"to resume it, then regenerate")
    record = json.loads(record_path.read_text())
    parent = Parent(out, str(record["run_id"]), [])
    for row in read_manifest(manifest):
        if row.clip_id not in parent.rows:
            parent.rows[row.clip_id] = []
            parent.items.append(SourceItem(clip_id=row.clip_id, source=row.source, uri=row.uri))
        parent.rows[row.clip_id].append(row)
    return parent


def check_output(out: str | Path, parent: Parent) -> None:
    """OUT2 must be a new folder or an earlier regenerate of the same parent (which is then resumed)."""
    out = Path(out).resolve()
    if out == parent.out:
        raise RegenerateError("--out must differ from --from: regenerate writes a new run and never edits its parent")
    record_path = out / "run.json"
    if record_path.exists():
        record = json.loads(record_path.read_text())
        if record.get("kind") != "regenerate" or record.get("parent") != str(parent.out):
            raise RegenerateError(f"{out} holds another run ({record.get('kind')} {record.get('run_id')}, parent "
                                  f"{record.get('parent')}); use a new --out")


@contextlib.contextmanager
def reading_parent(source_out: str | Path, out: str | Path) -> Iterator[Parent]:
    """The parent, held with a shared lock (no ingest may resume it while it is read)."""
    parent = read_parent(source_out)
    check_output(out, parent)
    lock = open(parent.out / ".lock", "a")
    try:
        fcntl.flock(lock, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError as exc:
        lock.close()
        raise RegenerateError(f"{parent.out} is being written by another remind-curate process") from exc
    try:
        yield parent
    finally:
        lock.close()


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
    """Every verified cached window of a run (each holds 81 decoded frames: about 100 MB; the flow loads one
    clip at a time). A window that fails verification is left out and, when ``failures`` is given, recorded
    there as ``window_id -> "reason: detail"``."""
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


def link_window(parent: Parent, window_id: str, run: RunContext) -> Path:
    """The new run's cache entry for a window: hard links to the parent's files, renamed into place at once."""
    src, dst, tmp = parent.windows / window_id, run.windows / window_id, run.tmp / f"window-{window_id}"
    if not src.is_dir():
        raise CacheError("cache_missing", f"no cached window {window_id} in {parent.out}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for path in src.iterdir():
        if path.is_file():
            _link_or_copy(path, tmp / path.name)
    shutil.rmtree(dst, ignore_errors=True)
    os.replace(tmp, dst)
    return dst


# -- the per-clip stages ------------------------------------------------------------------------------------------
def _cache_outcome(row: ManifestRow, exc: CacheError) -> Outcome:
    span = (row.source_start_s, row.source_end_s) if row.source_start_s is not None else None
    return Outcome("failed", exc.reason, window=row.window, error=exc.detail, stage="load-cache",
                   span_s=span, scores=dict(row.scores), tags=list(row.tags))  # type: ignore[arg-type]


@stage_task("load-cache")
def load_cached_clip(item: SourceItem, parent: Parent, run: RunContext) -> Clip:
    """The clip's accepted parent windows, linked into the new run's cache, verified and decoded."""
    started = time.perf_counter()
    clip = Clip(item)
    clip.notes.update(parent_keys={}, clean_mp4={}, carried=[])
    for row in parent.rows.get(item.clip_id, []):
        if row.status != "accepted":
            clip.notes["carried"].append(row)  # rejected/failed upstream: no cached window, the row carries over
            continue
        try:
            if not row.key or row.window is None:
                raise CacheError("cache_missing", "the parent's accepted row names no sample key or window")
            clip.notes["parent_keys"][row.window] = row.key
            window_id = window_id_of(row)
            directory = link_window(parent, window_id, run)
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
        clip.notes["clean_mp4"][window.window_id] = clean
    clip.timings["load-cache"] = time.perf_counter() - started
    return clip


@dataclass
class RegeneratedClip:
    """What ``RunStats.add`` accounts (the same fields as ``tasks.samples.ClipResult``)."""

    clip_id: str
    rows: list[ManifestRow]
    timings: dict[str, float]


@stage_task("write-samples")
def write_regenerated(clip: Clip, parent: Parent, run: RunContext) -> RegeneratedClip:
    """Encode each window's degraded clip (only), stage the sample with the cached clean clip, commit the ledger."""
    started = time.perf_counter()
    parent_keys: dict[int, str] = clip.notes.get("parent_keys", {})
    rows: list[ManifestRow] = []
    for window in clip.windows:
        parent_key = parent_keys.get(window.index)
        try:
            written = encode_and_stage(window, run, clean_mp4=clip.notes["clean_mp4"][window.window_id],
                                       parent_key=parent_key, parent_run=parent.run_id)
            rows.append(manifest_row(run, window, clip, "accepted", key=written.key, seconds=written.seconds,
                                     parent_key=parent_key))
        except Exception as exc:  # noqa: BLE001
            rows.append(manifest_row(run, window, clip, "failed", "write_error", describe_error(exc),
                                     parent_key=parent_key))
    for outcome in clip.outcomes:
        rows.append(manifest_row(run, None, clip, outcome.status, outcome.reason, outcome.error, outcome=outcome,
                                 parent_key=parent_keys.get(outcome.window)))  # type: ignore[arg-type]
    for row in clip.notes.get("carried", []):
        rows.append(row.model_copy(update={"run_id": run.run_id, "config_hash": run.clip_hash, "shard": None,
                                           "seconds": 0.0}))
    rows.sort(key=lambda r: (r.window is None, r.window if r.window is not None else 0))
    clip.notes.pop("clean_mp4", None)
    clip.timings["write-samples"] = time.perf_counter() - started
    commit_clip(clip, rows, run)
    return RegeneratedClip(clip.item.clip_id, rows, dict(clip.timings))


def regenerate_note(parent: Parent) -> str:
    return (f"Regenerated from {parent.out} (run {parent.run_id}): clean clips, filter and VLM results and geometry "
            "come from its window cache; no source was read and no filter, VLM or geometry stage ran. Only the "
            "degraded clips were encoded.")
