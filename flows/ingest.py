"""The ingest DAG: source -> [decode -> scene cuts -> windows -> motion -> VLM judge -> cameras -> graph -> write,
per clip] -> pack -> manifest -> previews -> report. Each step is a task in tasks/; this file only composes them."""
from __future__ import annotations

import time

from prefect import flow

from tasks.cameras import estimate_cameras
from tasks.decode import cut_windows, decode_source, detect_scene_cuts
from tasks.executor import run_clips
from tasks.judge import judge_events
from tasks.ledger import split_finished
from tasks.manifest import write_manifest
from tasks.pack import pack_shards
from tasks.prefilter.dataset_scores import apply_source_facts
from tasks.prefilter.motion import measure_motion
from tasks.previews import render_previews
from tasks.report import RunStats, write_report
from tasks.run_setup import accepted_keys, collect_rows, load_run_config, open_output
from tasks.samples import build_samples
from tasks.sources.resolve import list_sources

# Every clip goes through these, in order, then is encoded once and committed (tasks.samples.write_samples).
CLIP_STAGES = (decode_source, detect_scene_cuts, cut_windows, apply_source_facts, measure_motion, judge_events,
               estimate_cameras, build_samples)


@flow(name="ingest", log_prints=True)
def ingest(source: str = "synthetic:24", out: str = "out/demo", config_path: str | None = None,
           pexels_permission_confirmed: bool = False, ray_address: str | None = None) -> dict:
    """Curate ``source`` into WebDataset shards under ``out``. Rerunning the same command resumes.
    ``ray_address`` ("auto", "ray://host:10001", or "local") runs the per-clip stages on Ray."""
    started = time.perf_counter()
    config = load_run_config(config_path, ray_address)
    with open_output(out, config) as run:
        listing = list_sources(source, config, run.out, pexels_permission_confirmed)
        work = split_finished(listing.items, run)
        stats = RunStats(clips_reused=len(work.done_rows), redo_reasons=work.redo_reasons,
                         source_stats=listing.stats)
        for result in run_clips(work.todo, CLIP_STAGES, config, run):
            stats.add(result)
        rows = collect_rows(listing.items, run)
        packed = pack_shards(run, accepted_keys(rows))
        rows = write_manifest(run, rows, packed.key_to_shard)
        stats.previews = render_previews(run, rows)
        stats.finish(started, packed.new_shards, config)
        return write_report(run, rows, stats)
