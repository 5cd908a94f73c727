"""The run-level steps of the curation flows as Prefect tasks (so each shows in the UI as a node of the DAG), and the
run report as a Prefect artifact. The functions themselves live below, free of Prefect."""
from __future__ import annotations

from typing import Any

from prefect import task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE

import flows.secret_blocks  # noqa: F401 - sources read named secret blocks through Prefect
from engine.ledger import split_finished as _split_finished
from engine.run_setup import collect_rows as _collect_rows
from tasks.publish.card import write_dataset_card as _write_dataset_card
from tasks.publish.manifest import write_manifest as _write_manifest
from tasks.publish.pack import pack_shards as _pack_shards
from tasks.publish.previews import render_previews as _render_previews
from tasks.publish.report import write_report as _write_report
from tasks.sources.resolve import list_sources as _list_sources


def _step(fn: Any, name: str) -> Any:
    """A run-level step: no Prefect cache (the run ledger is the cache) and no persisted result."""
    return task(fn, name=name, cache_policy=NO_CACHE, persist_result=False)


list_sources = _step(_list_sources, "list-sources")
split_finished = _step(_split_finished, "split-finished")
collect_rows = _step(_collect_rows, "collect-rows")
pack_shards = _step(_pack_shards, "pack-shards")
write_manifest = _step(_write_manifest, "write-manifest")
write_dataset_card = _step(_write_dataset_card, "write-dataset-card")
render_previews = _step(_render_previews, "render-previews")


@task(name="report", cache_policy=NO_CACHE, persist_result=False)
def write_report(run: Any, rows: list, stats: Any) -> dict[str, Any]:
    summary = _write_report(run, rows, stats)
    create_markdown_artifact(markdown=(run.out / "report.md").read_text(), key=f"{run.kind}-report",
                             description=f"remind-curate {run.run_id}")
    return summary
