"""What becomes of an input that failed as a whole (a stage raised on the clip, or the machine failed it): it is
in the manifest as failed with the error, and the run goes on.

A clip's own failure (``clip_error``) is committed to the ledger like any outcome, so a rerun trusts it. A
failure of the environment (disk full, I/O error, a worker lost) is recorded with a ledger entry no run trusts
(``transient``), so the next run tries the clip again.
"""
from __future__ import annotations

from typing import Any

from engine.run import RunContext, atomic_write_json
from engine.stage import Failed
from schemas.manifest import ManifestRow
from tasks.clip import Clip, Outcome
from tasks.records import SourceItem
from tasks.sample_fields import manifest_row
from tasks.sample_files import commit_clip
from tasks.samples import ClipResult


def _item(record: Any) -> SourceItem:
    return record if isinstance(record, SourceItem) else record.item


def failed_rows(item: SourceItem, run: RunContext, reason: str, error: str, stage: str) -> tuple[Clip, list[ManifestRow]]:
    clip = Clip(item)
    outcome = Outcome("failed", reason, error=error, stage=stage)
    return clip, [manifest_row(run, None, clip, "failed", reason, error, outcome=outcome)]


def record_lost(item: SourceItem, run: RunContext, error: str, reason: str = "worker_lost") -> ClipResult:
    """The clip never finished: failed in the manifest, and a rerun redoes it (the ledger entry is transient)."""
    _, rows = failed_rows(item, run, reason, error, "executor")
    try:
        atomic_write_json(run.clips / f"{item.clip_id}.json", {
            "clip_id": item.clip_id, "clip_hash": "", "transient": True,
            "rows": [r.model_dump(mode="json") for r in rows], "timings": {}, "checksums": {}})
    except OSError:  # e.g. the disk is full: the manifest then says not_processed, and a rerun redoes it
        pass
    return ClipResult(item.clip_id, rows, {})


def record_failure(failed: Failed, config: Any, run: RunContext) -> ClipResult:
    """The pipeline's ``on_failure``: one failed input becomes its final result."""
    item = _item(failed.record)
    if failed.transient:
        return record_lost(item, run, failed.error, failed.reason)
    clip, rows = failed_rows(item, run, failed.reason, failed.error, failed.stage)
    try:
        commit_clip(clip, rows, run)
    except OSError as exc:
        return record_lost(item, run, f"{failed.error}; then {type(exc).__name__}: {exc}", "io_error")
    return ClipResult(item.clip_id, rows, {})


def clip_id_of(record: Any) -> str:
    return _item(record).clip_id
