"""The regenerate flow: ingest from the ``cache:OUT`` source. The same stages (``INGEST``) and the same executor;
each clip's first stage loads its cached windows instead of decoding, and the clip passes through the stages whose
results are cached (scene cuts, windows, source facts, motion, VLM judge, cameras): see tasks/regenerate.py.
Then new interruptions -> write (only the degraded clip encoded) -> pack -> manifest -> previews -> report."""
from __future__ import annotations

import time

from prefect import flow

from engine.run_setup import open_output
from engine.stores import readable_copy
from flows.config import load_regenerate_config
from flows.curate import INGEST, curate
from flows.steps import list_sources
from tasks.regenerate import from_cache, reading_parent, regenerate_note

REGENERATE = from_cache(INGEST)  # INGEST's stages; those whose results are cached load no model for cache records


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
