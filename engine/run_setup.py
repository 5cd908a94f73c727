"""Tasks that open a run and gather its rows (kept out of the flow file so it reads as the DAG)."""
from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from prefect import task
from prefect.cache_policies import NO_CACHE

from schemas.config import Config, load_config
from schemas.manifest import ManifestRow
from engine.ledger import load_rows
from tasks.records import SourceItem
from engine.run import RunContext, open_run
from engine.storage import connect, is_remote


@task(name="load-config", cache_policy=NO_CACHE, persist_result=False)
def load_run_config(config_path: str | None, ray_address: str | None = None) -> Config:
    """The effective configuration; ``ray_address`` turns Ray on ("local" starts a Ray on this machine)."""
    overrides = {"ray": {"enabled": True, "address": "" if ray_address == "local" else ray_address}} \
        if ray_address else None
    return load_config(config_path, overrides)


@contextlib.contextmanager
def open_output(out: str | Path, config: Config, kind: str = "ingest", parent: Path | None = None
                ) -> Iterator[RunContext]:
    """The run folder; for an object-store OUT (engine.storage) a local working folder mirrored to the store:
    checked and pulled before any work, identity pushed at once, summary pushed when the run ends."""
    remote = connect(out) if is_remote(str(out)) else None
    if remote:
        remote.take_lease()  # one writer per URL across machines (engine.bucket_lease)
    try:
        run = open_run(remote.local if remote else Path(out), config, kind, parent, remote.pull if remote else None)
        run.remote = remote
        try:
            if remote:
                remote.push_identity(run)
            yield run
            if remote:
                remote.push_outputs(run)
        finally:
            run.release()
    finally:
        if remote:
            remote.give_back_lease()


@task(name="collect-rows", cache_policy=NO_CACHE, persist_result=False)
def collect_rows(items: list[SourceItem], run: RunContext) -> list[ManifestRow]:
    """Every ledger row of this run's inputs, in input order (finished earlier or just now)."""
    if run.remote is not None:  # OUT on object storage: what workers on other nodes committed comes down first
        run.remote.refresh()
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
