"""The regenerate DAG: parent cache -> (per clip) load cached windows -> new interruptions -> write -> pack ->
manifest -> previews -> report. No source read, no filter, no VLM, no geometry: see tasks/regenerate.py."""
from __future__ import annotations

import time

from prefect import flow
from tqdm import tqdm

from tasks.ledger import split_finished
from tasks.manifest import write_manifest
from tasks.pack import pack_shards
from tasks.previews import render_previews
from tasks.regenerate import load_cached_clip, load_regenerate_config, reading_parent, regenerate_note, \
    write_regenerated
from tasks.report import RunStats, write_report
from tasks.run_setup import accepted_keys, collect_rows, open_output
from tasks.samples import build_samples


@flow(name="regenerate", log_prints=True)
def regenerate(source_out: str, out: str, config_path: str | None = None) -> dict:
    """Rebuild ``source_out``'s shards under ``out`` with new augmentation settings. Rerunning resumes."""
    started = time.perf_counter()
    config = load_regenerate_config(source_out, config_path)
    with reading_parent(source_out, out) as parent, \
            open_output(out, config, kind="regenerate", parent=parent.out) as run:
        work = split_finished(parent.items, run)
        stats = RunStats(clips_reused=len(work.done_rows), redo_reasons=work.redo_reasons,
                         source_stats={"parent": str(parent.out), "parent_run": parent.run_id})
        for item in tqdm(work.todo, desc="clips", unit="clip", disable=None):
            clip = load_cached_clip(item, parent, run)
            clip = build_samples(clip, config)
            stats.add(write_regenerated(clip, parent, run))
        rows = collect_rows(parent.items, run)
        packed = pack_shards(run, accepted_keys(rows))
        rows = write_manifest(run, rows, packed.key_to_shard)
        stats.previews = render_previews(run, rows)
        stats.notes.append(regenerate_note(parent))
        stats.finish(started, packed.new_shards, config)
        return write_report(run, rows, stats)
