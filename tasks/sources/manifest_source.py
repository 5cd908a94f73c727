"""`manifest:FILE`: any collection of videos, one row per video, from a Parquet, CSV or JSONL file.

Columns: ``uri`` (required: a path, relative to the manifest's folder, or an fsspec URL) and optionally
``caption``, ``license``, ``attribution``, ``event_type`` (a taxonomy id) and ``camera`` (a per-frame camera file
for the video, relative to the manifest's folder: see ``tasks.sources.video_cameras``). Every row becomes an
input; a broken row (no uri, a missing file, an unknown event type, a missing camera file, a line that is not
JSON, a duplicate) becomes a *failed* input whose error names the row and the problem, and the run goes on.
"""
from __future__ import annotations

import csv
import hashlib
import json
from pathlib import Path
from typing import Any

from schemas.config import Config
from tasks.records import SourceItem
from tasks.sources.local import local_items
from taxonomy import load_taxonomy

COLUMNS = ("uri", "caption", "license", "attribution", "event_type", "camera")


def read_rows(path: Path) -> list[dict[str, Any] | str]:
    """The manifest's rows as dicts; a JSONL line that does not parse stays a string (the error)."""
    suffix = path.suffix.lower()
    if suffix in (".parquet", ".pq"):
        import pyarrow.parquet as pq

        return pq.read_table(path).to_pylist()
    if suffix == ".csv":
        with open(path, newline="", encoding="utf-8") as handle:
            return list(csv.DictReader(handle))
    if suffix in (".jsonl", ".ndjson"):
        rows: list[dict[str, Any] | str] = []
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                rows.append(row if isinstance(row, dict) else f"line {number} is JSON but not an object")
            except json.JSONDecodeError as exc:
                rows.append(f"line {number} is not JSON ({exc.msg})")
        return rows
    raise ValueError(f"{path}: a manifest is .parquet, .csv or .jsonl, not '{suffix or 'no suffix'}'")


def _text(row: dict[str, Any], key: str) -> str:
    value = row.get(key)
    return "" if value is None else str(value).strip()


def _resolve(base: Path, value: str) -> str:
    return value if "://" in value or Path(value).is_absolute() else str(base / value)


def _row_item(index: int, row: dict[str, Any], base: Path, config: Config, fetch_dir: Path | None
              ) -> SourceItem:
    """One row -> an item; raises ValueError with the row's problem."""
    uri = _text(row, "uri")
    if not uri:
        raise ValueError("no 'uri'")
    event_type = _text(row, "event_type")
    if event_type:
        try:
            load_taxonomy().group_of(event_type)
        except KeyError:
            raise ValueError(f"unknown event_type '{event_type}' (see `remind-curate taxonomy`)") from None
    camera = _text(row, "camera")
    if camera and not Path(_resolve(base, camera)).is_file():
        raise ValueError(f"camera file {camera} not found")
    target = _resolve(base, uri)
    try:
        found = local_items(target, fetch_dir)
    except FileNotFoundError:
        raise ValueError(f"video {uri} not found") from None
    if len(found) != 1 or Path(found[0].uri).name != Path(target).name:
        raise ValueError(f"uri {uri} is not one video file")
    video = found[0]
    if video.error:
        raise ValueError(video.error)
    provenance: dict[str, Any] = {**video.provenance, "manifest_row": index,
                                  "license": _text(row, "license") or config.sources.manifest.default_license}
    for key in ("caption", "attribution", "event_type"):
        if _text(row, key):
            provenance[key] = _text(row, key)
    if "caption" in provenance:
        provenance["caption_origin"] = "manifest"
    if camera:
        provenance["camera_file"] = str(Path(_resolve(base, camera)).resolve())
    fields = json.dumps({k: _text(row, k) for k in COLUMNS if k != "uri"}, sort_keys=True)
    identity = hashlib.sha256(f"{provenance.get('sha256', video.uri)}:{fields}".encode()).hexdigest()[:16]
    return SourceItem(f"manifest-{identity}", "manifest", video.uri, video.path, provenance)


def manifest_items(path: str, config: Config, fetch_dir: Path | None) -> list[SourceItem]:
    """One item per row; remote rows are fetched into ``fetch_dir`` (None: where they are decoded)."""
    manifest = Path(path).expanduser()
    if not manifest.is_file():
        raise FileNotFoundError(f"manifest not found: {path}")
    base = manifest.resolve().parent
    rows = read_rows(manifest)
    if rows and all(isinstance(r, dict) for r in rows) and not any("uri" in r for r in rows):
        raise ValueError(f"{path}: no 'uri' column (columns: {', '.join(COLUMNS)})")
    items: list[SourceItem] = []
    seen: dict[str, int] = {}
    for index, row in enumerate(rows):
        where = f"{manifest.name} row {index}"
        try:
            if isinstance(row, str):
                raise ValueError(row)
            item = _row_item(index, row, base, config, fetch_dir)
            if item.clip_id in seen:
                raise ValueError(f"duplicate of row {seen[item.clip_id]}")
            seen[item.clip_id] = index
            items.append(item)
        except (ValueError, OSError) as exc:
            uri = _text(row, "uri") if isinstance(row, dict) else ""
            clip_id = "manifest-" + hashlib.sha256(f"{manifest.name}:{index}".encode()).hexdigest()[:16]
            items.append(SourceItem(clip_id, "manifest", uri or f"{manifest.resolve()}#row={index}", None,
                                    {"manifest_row": index}, error=f"{where}: {exc}"))
    return items
