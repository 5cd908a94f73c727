"""Tasks that open a run and gather its rows (kept out of the flow file so it reads as the DAG)."""
from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from prefect import task
from prefect.cache_policies import NO_CACHE

from schemas.config import Config, load_config
from schemas.manifest import ManifestRow
from tasks.ledger import load_rows
from tasks.records import SourceItem
from tasks.run import RunContext, open_run


@task(name="load-config", cache_policy=NO_CACHE, persist_result=False)
def load_run_config(config_path: str | None, ray_address: str | None = None) -> Config:
    """The effective configuration; ``ray_address`` turns Ray on ("local" starts a Ray on this machine)."""
    overrides = {"ray": {"enabled": True, "address": "" if ray_address == "local" else ray_address}} \
        if ray_address else None
    return load_config(config_path, overrides)


@contextlib.contextmanager
def open_output(out: str | Path, config: Config, kind: str = "ingest", parent: Path | None = None
                ) -> Iterator[RunContext]:
    run = open_run(Path(out), config, kind, parent)
    try:
        yield run
    finally:
        run.release()


@task(name="collect-rows", cache_policy=NO_CACHE, persist_result=False)
def collect_rows(items: list[SourceItem], run: RunContext) -> list[ManifestRow]:
    """Every ledger row of this run's inputs, in input order (finished earlier or just now)."""
    rows = load_rows(items, run)
    seen = {r.clip_id for r in rows}
    for item in items:  # an input whose clip never committed (should not happen) still gets a row
        if item.clip_id not in seen:
            rows.append(ManifestRow(run_id=run.run_id, clip_id=item.clip_id, source=item.source, uri=item.uri,
                                    status="failed", reason="not_processed", error="no ledger entry",
                                    config_hash=run.clip_hash))
    return rows


def accepted_keys(rows: list[ManifestRow]) -> list[str]:
    return [r.key for r in rows if r.status == "accepted" and r.key]
