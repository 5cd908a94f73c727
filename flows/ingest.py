"""The ingest DAG: source -> [decode -> scene cuts -> windows -> source facts -> motion -> VLM judge -> cameras ->
graph -> write, streamed clip by clip] -> pack -> manifest -> previews -> report. Each step is a stage in tasks/;
the executor (engine/) decides where and how many; this file only composes them."""
from __future__ import annotations

import time

from prefect import flow

from engine.executor import run_pipeline
from engine.ledger import split_finished
from engine.run import RunContext
from engine.run_setup import accepted_keys, collect_rows, load_run_config, open_output
from engine.stage import Pipeline
from schemas.config import Config
from tasks.cameras import EstimateCameras
from tasks.decode import CutWindows, DecodeSource, DetectSceneCuts
from tasks.failures import clip_id_of, record_failure
from tasks.judge import JudgeEvents
from tasks.manifest import write_manifest
from tasks.pack import pack_shards
from tasks.prefilter.dataset_scores import ApplySourceFacts
from tasks.prefilter.motion import MeasureMotion
from tasks.previews import render_previews
from tasks.report import RunStats, write_report
from tasks.samples import BuildGraph, WriteSamples
from tasks.sources.resolve import SourceListing, list_sources

INGEST = Pipeline("ingest", (DecodeSource, DetectSceneCuts, CutWindows, ApplySourceFacts, MeasureMotion,
                             JudgeEvents, EstimateCameras, BuildGraph, WriteSamples),
                  on_failure=record_failure, record_id=clip_id_of)


def curate(listing: SourceListing, pipeline: Pipeline, config: Config, run: RunContext, started: float,
           notes: tuple[str, ...] = ()) -> dict:
    """The DAG after the sources are listed, shared by ingest and regenerate: the unfinished inputs through the
    pipeline's stages (streamed by the executor) -> pack -> manifest -> previews -> report."""
    work = split_finished(listing.items, run)
    stats = RunStats(clips_reused=len(work.done_rows), redo_reasons=work.redo_reasons, source_stats=listing.stats)
    execution = run_pipeline(work.todo, pipeline, config, run)
    for result in execution:
        stats.add(result)
    stats.pipeline = execution.metrics.summary()
    rows = collect_rows(listing.items, run)
    packed = pack_shards(run, accepted_keys(rows))
    rows = write_manifest(run, rows, packed.key_to_shard)
    stats.previews = render_previews(run, rows)
    stats.notes += list(notes)
    stats.finish(started, packed.new_shards, config)
    return write_report(run, rows, stats)


@flow(name="ingest", log_prints=True)
def ingest(source: str = "synthetic:24", out: str = "out/demo", config_path: str | None = None,
           pexels_permission_confirmed: bool = False, ray_address: str | None = None) -> dict:
    """Curate ``source`` into WebDataset shards under ``out``. Rerunning the same command resumes.
    ``ray_address`` ("auto", "ray://host:10001", or "local") runs the stages on Ray Data. A ``cache:OUT`` source
    is a regenerate of OUT (flows/regenerate.py: the same stages; the config is OUT's with ``config_path`` over it)."""
    if source.startswith("cache:"):
        from flows.regenerate import regenerate

        return regenerate.fn(source.removeprefix("cache:"), out, config_path, ray_address)
    started = time.perf_counter()
    config = load_run_config(config_path, ray_address)
    with open_output(out, config) as run:
        listing = list_sources(source, config, run.out, pexels_permission_confirmed)
        return curate(listing, INGEST, config, run, started)
