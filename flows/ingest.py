"""The ingest flow: list the sources, then the curation DAG (flows/curate.py) over them."""
from __future__ import annotations

import time

from prefect import flow

from engine.run_setup import open_output
from flows.config import load_run_config
from flows.curate import INGEST, curate
from flows.regenerate import regenerate_run
from flows.steps import list_sources


@flow(name="ingest", log_prints=True)
def ingest(source: str = "synthetic:24", out: str = "out/demo", config_path: str | None = None,
           pexels_permission_confirmed: bool = False, ray_address: str | None = None) -> dict:
    """Curate ``source`` into WebDataset shards under ``out``. Rerunning the same command resumes.
    ``ray_address`` ("auto", "ray://host:10001", or "local") runs the stages on Ray Data. A ``cache:OUT`` source
    is a regenerate of OUT (flows/regenerate.py)."""
    if source.startswith("cache:"):
        return regenerate_run(source.removeprefix("cache:"), out, config_path, ray_address)
    started = time.perf_counter()
    config = load_run_config(config_path, ray_address)
    with open_output(out, config) as run:
        listing = list_sources(source, config, run.out, pexels_permission_confirmed)
        return curate(listing, INGEST, config, run, started)
