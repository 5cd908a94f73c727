"""Opening a run's OUT and gathering its rows (kept out of the flow file so it reads as the DAG)."""
from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from pathlib import Path

from engine.ledger import load_rows
from engine.run import RunContext, open_run
from engine.stores import open_store
from schemas.config import Config
from schemas.manifest import ManifestRow


@contextlib.contextmanager
def open_output(out: str | Path, config: Config, kind: str = "ingest", parent: Path | None = None
                ) -> Iterator[RunContext]:
    """The run folder, with its store (engine.store): checked and pulled before any work, identity made durable at
    once, summary made durable when the run ends; one writer per OUT."""
    store = open_store(str(out))
    store.take_lease()  # one writer per URL across machines (engine.bucket_lease); the folder lock is open_run's
    try:
        run = open_run(store.local, config, kind, parent, store.pull)
        run.store = store
        try:
            store.push_identity(run)
            yield run
            store.push_outputs(run)
        finally:
            run.release()
    finally:
        store.give_back_lease()


def collect_rows(items: Sequence, run: RunContext) -> list[ManifestRow]:
    """Every ledger row of this run's inputs, in input order (finished earlier or just now)."""
    run.store.refresh()  # what workers on other nodes committed comes down first
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
