"""The per-clip ledger and the published-shard index: which inputs are finished, so a rerun redoes none of them
and repeats no key. An input is anything with a ``clip_id`` and an ``error`` (None unless it failed before any
stage saw it)."""
from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from engine.run import RunContext, sha256_file
from schemas.manifest import ManifestRow


def published_index(run: RunContext) -> dict[str, str]:
    """key -> shard name over the run's published shards (the store's: for s3:// OUT, the bucket's)."""
    return run.store.published_keys()


@dataclass
class WorkSplit:
    todo: list[Any]
    done_rows: dict[str, list[ManifestRow]] = field(default_factory=dict)  # clip id -> its rows
    redo_reasons: dict[str, str] = field(default_factory=dict)  # clip id -> why a ledger entry was not trusted


def finished_rows(item: Any, run: RunContext, packed: dict[str, str]) -> tuple[list[ManifestRow] | None, str]:
    """The clip's rows when its ledger entry is complete and its outputs verify; else None and why not."""
    path = run.clips / f"{item.clip_id}.json"
    if not path.exists():
        return None, "new"
    try:
        entry = json.loads(path.read_text())
        rows = [ManifestRow.model_validate(r) for r in entry["rows"]]
    except (ValueError, KeyError) as exc:
        return None, f"unreadable ledger entry ({exc})"
    if entry.get("transient"):  # tasks.failures.record_lost: the machine failed, not the clip
        return None, f"previous attempt did not finish ({rows[0].reason if rows else 'lost'})"
    if entry.get("clip_hash") != run.clip_hash:
        return None, "configuration changed"
    if item.error is None and any(r.status == "failed" and r.reason == "source_error" for r in rows):
        return None, "its source failed earlier and is available now"
    members = entry.get("member_checksums") or {k: {"mp4": c} for k, c in entry.get("checksums", {}).items()}
    for key, checksums in members.items():
        if key in packed:
            continue
        for name, checksum in sorted(checksums.items(), key=lambda kv: (kv[0] != "mp4", kv[0])):
            path = run.samples / key / name
            what = "" if name == "mp4" else f" {name}"
            if not path.exists():
                return None, f"staged sample {key} is missing{what}"
            if sha256_file(path) != checksum:
                return None, f"staged sample {key} is corrupt ({name + ' ' if what else ''}checksum mismatch)"
    return rows, "finished"


def split_finished(items: Sequence[Any], run: RunContext) -> WorkSplit:
    packed = published_index(run)
    split = WorkSplit(todo=[])
    for item in items:
        rows, why = finished_rows(item, run, packed)
        if rows is None:
            split.todo.append(item)
            if why != "new":
                split.redo_reasons[item.clip_id] = why
        else:
            split.done_rows[item.clip_id] = rows
    return split


def load_rows(items: Sequence[Any], run: RunContext) -> list[ManifestRow]:
    rows: list[ManifestRow] = []
    for item in items:
        path = run.clips / f"{item.clip_id}.json"
        if path.exists():
            rows += [ManifestRow.model_validate(r) for r in json.loads(path.read_text())["rows"]]
    return rows
