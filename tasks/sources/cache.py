"""The ``cache:OUT`` source: a finished run's window cache, read back as the input of a new run (regenerate).

A finished run OUT keeps, per accepted window, ``OUT/cache/windows/<window_id>/``: the normalised clean clip as
encoded (``clean.mp4``), its cameras/intrinsics/depth (depth already at the packed 120x208 float16), the source's
truth arrays and ``window.json`` (item, filter scores, tags, caption, VLM verdict, geometry record, checksums).

This module is the source's listing and rules: ``cache_listing`` lists OUT's inputs (one ``CacheItem`` per clip
of its manifest, ``source="cache"``, holding the parent's rows for that clip), the config a run from the cache may
use, and the parent's lock. Its first stage, ``LoadCachedClip`` (``tasks/sources/cache_windows.py``), loads each
item's cached windows; the regenerate pipeline (``flows/regenerate.py``) is ingest's with that stage first and the
stages whose results the cache holds (``CACHED_STAGES``) passed through.

Decisions:
- Configuration: the parent's ``OUT/config.yaml`` is the base and ``--config`` is merged over it. A change to a
  section the cache was built with (``CACHED_SECTIONS``) is refused, naming each key: those need a new ingest.
  ``remind-curate ingest --source cache:OUT`` follows the same rules (it runs the regenerate flow).
- The new run's window cache entry is a set of hard links to the parent's files (a copy only across file
  systems): no byte is duplicated, and OUT2 is self-contained (it can be the parent of a further regenerate, and
  survives deleting OUT). Checksums are verified on the linked files, so what is packed is what was verified; a
  window that fails verification becomes a ``failed`` row (reason ``cache_missing`` / ``cache_corrupt``).
- The sample's ``mp4`` is the cached ``clean.mp4`` (``Window.clean_mp4``: the write stage links it, never
  re-encodes): the new shard's clean clips are bit-identical to the parent's. Keys are the parent's keys (same
  window ids); ``meta.parent_key``/``parent_run`` and the manifest's ``parent_key`` name the parent sample.
- Depth stays at the cached 120x208: the write stage packs it with the same ``downsample_depth`` as an ingest,
  which on an array already at that size is an identity (a resize to the same shape is a copy), so the packed
  depth equals the parent's bit for bit.
- Augmentation reads the frames decoded from the cached (lossy) clean clip, i.e. exactly the clean clip the sample
  ships; an ingest augments the pre-encode frames, so degraded pixels differ from an ingest with the same config
  by encoding noise only. Parent rows that were rejected or failed upstream are carried into the new manifest
  (``Clip.carried``: stamped with the new run's id by the loader, recorded by the write stage after the clip's
  own rows, in the parent's order).
- The parent is held with a shared lock for the whole run: several regenerates may read it at once, an ingest
  resuming it is refused meanwhile (``open_run`` takes an exclusive lock).
"""
from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.run import lock_folder
from schemas.config import Config, load_config
from schemas.manifest import ManifestRow
from tasks.publish.manifest import read_manifest
from tasks.records import SourceItem

# The ingest stages whose results a cached window holds: the regenerate pipeline passes through them.
CACHED_STAGES = frozenset({"detect-scene-cuts", "cut-windows", "source-facts", "measure-motion", "judge-events",
                           "estimate-cameras"})
# Config sections the cached windows were built with: a run from the cache may not change them (a new ingest may).
# ``encode`` is one because the cached clean clip is reused byte for byte: a new crf/preset would give a sample
# whose clean and degraded clips were encoded differently.
CACHED_SECTIONS = ("normalise", "prefilter", "vlm", "geometry", "synthetic", "sources", "encode")


class RegenerateError(RuntimeError):
    """The request cannot be served from the parent's cache (unfinished parent, wrong OUT, cache-bound config)."""


@dataclass(frozen=True)
class CacheItem(SourceItem):
    """One input of a ``cache:OUT`` source: a clip of the parent run (``path`` is the parent's OUT)."""

    parent_run: str = ""  # the parent's run id
    parent_source: str = "cache"  # the source the parent read the clip from (the loaded clip's ``source``)
    rows: tuple[ManifestRow, ...] = ()  # the parent's manifest rows of the clip, in manifest order


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


def cache_items(parent: Parent) -> list[CacheItem]:
    """One ``source="cache"`` item per input of the parent: ``path`` is the parent OUT, ``rows`` its rows."""
    return [CacheItem(clip_id=item.clip_id, source="cache", uri=item.uri, path=str(parent.out),
                      parent_run=parent.run_id, parent_source=item.source, rows=tuple(parent.rows[item.clip_id]))
            for item in parent.items]


def cache_listing(source_out: str | Path, config: Config) -> tuple[list[CacheItem], dict[str, Any]]:
    """The items of ``cache:OUT`` and the listing's facts, after checking ``config`` against OUT's."""
    parent = read_parent(source_out)
    check_cached_config(parent.out, config)
    return cache_items(parent), {"parent": str(parent.out), "parent_run": parent.run_id}


# -- a run from the cache ----------------------------------------------------------------------------------------------
def regenerate_config(source_out: str | Path, config_path: str | Path | None,
                      overrides: dict[str, Any] | None = None) -> Config:
    """The parent's config with ``config_path``'s keys (then ``overrides``) merged over it; refuses changes to
    ``CACHED_SECTIONS``."""
    source_out = Path(source_out)
    parent_yaml = source_out / "config.yaml"
    if not parent_yaml.exists():
        raise RegenerateError(f"{source_out} is not a remind-curate output (no config.yaml)")
    config = Config.load(parent_yaml, config_path, overrides=overrides)
    try:
        check_cached_config(source_out, config)
    except RegenerateError as exc:
        raise RegenerateError(f"--config: {exc}") from None
    return config


# -- its output --------------------------------------------------------------------------------------------------------
def check_output(out: str | Path, parent: Parent | Path) -> None:
    """OUT2 must be a new folder or an earlier regenerate of the same parent (which is then resumed)."""
    out, parent_out = Path(out).resolve(), parent.out if isinstance(parent, Parent) else Path(parent).resolve()
    if out == parent_out:
        raise RegenerateError("--out must differ from --from: regenerate writes a new run and never edits its parent")
    record_path = out / "run.json"
    if record_path.exists():
        record = json.loads(record_path.read_text())
        if record.get("kind") != "regenerate" or record.get("parent") != str(parent_out):
            raise RegenerateError(f"{out} holds another run ({record.get('kind')} {record.get('run_id')}, parent "
                                  f"{record.get('parent')}); use a new --out")


@contextlib.contextmanager
def reading_parent(source_out: str | Path, out: str | Path) -> Iterator[Path]:
    """The parent's OUT (resolved), held with a shared lock (no ingest may resume it while it is read)."""
    parent_out, _ = finished_run(source_out)
    check_output(out, parent_out)
    lock = lock_folder(parent_out, shared=True)
    if lock is None:
        raise RegenerateError(f"{parent_out} is being written by another remind-curate process")
    try:
        yield parent_out
    finally:
        lock.close()


def regenerate_note(parent_out: Path, parent_run: str) -> str:
    return (f"Regenerated from {parent_out} (run {parent_run}): clean clips, filter and VLM results and geometry "
            "come from its window cache; no source was read and no filter, VLM or geometry stage ran (they "
            "were left out of its pipeline). Only the degraded clips were encoded.")
