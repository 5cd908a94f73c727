"""The regenerate flow: ingest from the ``cache:OUT`` source (tasks/sources/cache.py), through the same executor.

``REGENERATE`` is ``INGEST`` with the cache source's loader (``LoadCachedClip``) in place of decoding and the stages
whose results the cache holds (scene cuts, windows, source facts, motion, VLM judge, cameras) declared passed
through: the executor never starts them, so a regenerate loads no model, reserves no GPU and reads no source. Then
new interruptions -> write (only the degraded clip encoded: each window carries its cached clean clip) -> pack ->
manifest -> previews -> report."""
from __future__ import annotations

import dataclasses
import time

from prefect import flow

from engine.run_setup import open_output
from engine.stage import Pipeline
from engine.stores import readable_copy
from flows.config import load_regenerate_config
from flows.curate import INGEST, curate
from flows.steps import list_sources
from tasks.decode import DecodeSource
from tasks.sources.cache import CACHED_STAGES, reading_parent, regenerate_note
from tasks.sources.cache_windows import LoadCachedClip


def from_cache(pipeline: Pipeline) -> Pipeline:
    """``pipeline`` for the ``cache:`` source: its decoding stage replaced by the cache loader, and every stage in
    ``CACHED_STAGES`` passed through."""
    names = {stage.name for stage in pipeline.stages}
    if pipeline.stages[0] is not DecodeSource or not CACHED_STAGES <= names:
        raise ValueError(f"{pipeline.name} does not start with decoding or has no stage named "
                         f"{', '.join(sorted(CACHED_STAGES - names))}")
    return dataclasses.replace(pipeline, name="regenerate", stages=(LoadCachedClip, *pipeline.stages[1:]),
                               passed_through=CACHED_STAGES)


REGENERATE = from_cache(INGEST)


def regenerate_run(source_out: str, out: str, config_path: str | None = None, ray_address: str | None = None
                   ) -> dict:
    started = time.perf_counter()
    source_out = readable_copy(source_out)  # --from s3://...: its window cache, pulled into a working folder
    config = load_regenerate_config(source_out, config_path, ray_address)
    with reading_parent(source_out, out) as parent, \
            open_output(out, config, kind="regenerate", parent=parent) as run:
        listing = list_sources(f"cache:{parent}", config, run.out)
        return curate(listing, REGENERATE, config, run, started,
                      notes=(regenerate_note(parent, listing.stats["parent_run"]),))


@flow(name="regenerate", log_prints=True)
def regenerate(source_out: str, out: str, config_path: str | None = None, ray_address: str | None = None) -> dict:
    """Rebuild ``source_out``'s shards under ``out`` with new augmentation settings. Rerunning resumes."""
    return regenerate_run(source_out, out, config_path, ray_address)
