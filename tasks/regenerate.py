"""Regenerate: new augmentations for a finished run, from its window cache alone.

Regenerate is ingest from the ``cache:OUT`` source (``tasks/sources/cache.py``) through the same stages and the
same executor. Each cache item's first stage loads its cached windows instead of decoding a source, and the clip
skips the stages whose results are cached (scene cuts, windows, source facts, motion, VLM judge, cameras), so a
regenerate run never reads a source and never runs a pre-filter, the VLM judge or a geometry backend: the
executor passes the clip through those stages, and ``from_cache`` defers their ``setup`` (model loading) until a
record needs it, which a cache record never does, and reserves no GPU for them. The graph stage draws new
interruptions with the new ``augment`` settings and the write stage encodes only the degraded clip.

Decisions:
- Configuration: the parent's ``OUT/config.yaml`` is the base and ``--config`` is merged over it. A change to a
  section the cache was built with (``CACHED_SECTIONS``) is refused, naming each key: those need a new ingest.
  ``remind-curate ingest --source cache:OUT`` follows the same rules (it runs this flow).
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
import dataclasses
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any


from engine.run import lock_folder
from engine.stage import Pipeline, ProcessingStage, Resources
from schemas.config import Config
from tasks.sources.cache import CACHED_STAGES, Parent, RegenerateError, check_cached_config, finished_run


# -- configuration ------------------------------------------------------------------------------------------------
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


# -- the parent run -----------------------------------------------------------------------------------------------
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


# -- the pipeline -------------------------------------------------------------------------------------------------
def _deferred(stage: type[ProcessingStage]) -> type[ProcessingStage]:
    """``stage`` with its ``setup`` run at its first live record, not at worker start, and no GPU reserved (so the
    Ray backend runs it as plain tasks, not as an actor pool holding a model)."""

    def process_batch(self: ProcessingStage, records: list[Any]) -> list[Any]:
        if not getattr(self, "_ready", False):
            stage.setup(self)
            self._ready = True
        return stage.process_batch(self, records)

    def resources_for(cls: type, config: Any) -> Resources:
        return dataclasses.replace(stage.resources_for(config), gpus=0.0)

    return type(stage.__name__, (stage,), {"setup": ProcessingStage.setup, "process_batch": process_batch,
                                           "resources_for": classmethod(resources_for),
                                           "__module__": stage.__module__, "__doc__": stage.__doc__})


def from_cache(pipeline: Pipeline) -> Pipeline:
    """``pipeline`` (the same stages, in order) for the ``cache:`` source: every record passes through the stages in
    ``CACHED_STAGES``, so those load no model and hold no GPU unless a record actually needs them."""
    names = {stage.name for stage in pipeline.stages}
    if not CACHED_STAGES <= names:
        raise ValueError(f"{pipeline.name} has no stage named {', '.join(sorted(CACHED_STAGES - names))}")
    return dataclasses.replace(pipeline, stages=tuple(_deferred(s) if s.name in CACHED_STAGES else s
                                                      for s in pipeline.stages))


def regenerate_note(parent_out: Path, parent_run: str) -> str:
    return (f"Regenerated from {parent_out} (run {parent_run}): clean clips, filter and VLM results and geometry "
            "come from its window cache; no source was read and no filter, VLM or geometry stage ran (the clips "
            "passed through them). Only the degraded clips were encoded.")
