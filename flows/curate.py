"""The curation DAG shared by ingest and regenerate: [decode -> scene cuts -> windows -> source facts -> motion ->
VLM judge -> cameras -> graph -> write, streamed clip by clip by the executor] -> pack -> manifest -> previews ->
report. Each step is a stage in tasks/; the executor (engine/) decides where and how many; this file only composes."""
from __future__ import annotations

import os

from prefect.settings import get_current_settings

from engine.executor import run_pipeline
from engine.run import RunContext
from engine.run_setup import accepted_keys
from engine.stage import Pipeline
from flows.steps import (collect_rows, pack_shards, render_previews, split_finished, write_dataset_card, write_manifest,
                         write_report)
from schemas.config import Config
from tasks.cameras import EstimateCameras
from tasks.decode import CutWindows, DecodeSource, DetectSceneCuts
from tasks.failures import clip_id_of, record_failure
from tasks.judge import JudgeEvents
from tasks.prefilter.dataset_scores import ApplySourceFacts
from tasks.prefilter.motion import MeasureMotion
from tasks.publish.report import RunStats
from tasks.samples import BuildGraph, WriteSamples
from tasks.sources.listing import SourceListing

INGEST = Pipeline("ingest", (DecodeSource, DetectSceneCuts, CutWindows, ApplySourceFacts, MeasureMotion,
                             JudgeEvents, EstimateCameras, BuildGraph, WriteSamples),
                  on_failure=record_failure, record_id=clip_id_of)


def curate(listing: SourceListing, pipeline: Pipeline, config: Config, run: RunContext, started: float,
           notes: tuple[str, ...] = ()) -> dict:
    """The DAG after the sources are listed, shared by ingest and regenerate: the unfinished inputs through the
    pipeline's stages (streamed by the executor) -> pack -> manifest -> previews -> report."""
    api = get_current_settings().api.url  # Ray workers talk to this run's Prefect API (engine.runtime.worker_env_vars)
    if api:
        os.environ["PREFECT_API_URL"] = str(api)
    work = split_finished(listing.items, run)
    stats = RunStats(clips_reused=len(work.done_rows), redo_reasons=work.redo_reasons, source_stats=listing.stats)
    execution = run_pipeline(work.todo, pipeline, config, run)
    for result in execution:
        stats.add(result)
    stats.pipeline = execution.metrics.summary()
    rows = collect_rows(listing.items, run)
    packed = pack_shards(run, accepted_keys(rows))
    rows = write_manifest(run, rows, packed.key_to_shard)
    write_dataset_card(run.out, rows, config, run.store.shard_sizes(), run.tmp)
    stats.previews = render_previews(run, rows)
    stats.notes += list(notes)
    stats.finish(started, packed.new_shards, config)
    return write_report(run, rows, stats)
