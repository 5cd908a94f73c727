"""`openvid:CSV`: OpenVid-1M's metadata CSV beside its video folder; captions and the dataset's scores come along.

The CSV has OpenVid-1M's columns (names with spaces, as released): ``video`` (file name), ``caption``,
``aesthetic score``, ``motion score``, ``temporal consistency score``, ``camera motion``, ``frame``, ``fps``,
``seconds``. Videos are looked up in ``sources.openvid.video_dir``, else beside the CSV, else in its ``video/`` or
``videos/`` sub-folder. A row whose video is missing, or whose score is not a number, becomes a failed input with
the reason; the run goes on.
"""
from __future__ import annotations

import csv
import hashlib
import math
from pathlib import Path
from typing import Any

from schemas.config import Config
from tasks.records import SourceItem

REQUIRED = ("video", "caption")
SCORES = {"aesthetic score": "aesthetic", "motion score": "motion",
          "temporal consistency score": "temporal_consistency"}
LABELS = {"camera motion": "camera_motion"}
FACTS = {"frame": int, "fps": float, "seconds": float}


def _video_dirs(csv_path: Path, configured: str) -> list[Path]:
    if configured:
        return [Path(configured).expanduser()]
    base = csv_path.parent
    return [base, base / "video", base / "videos"]


def _number(value: str, column: str, cast=float) -> Any:
    try:
        number = cast(float(value)) if cast is int else cast(value)
    except (TypeError, ValueError):
        raise ValueError(f"column '{column}' holds {value!r}, not a number") from None
    if isinstance(number, float) and not math.isfinite(number):
        raise ValueError(f"column '{column}' holds {value!r}, not a finite number")
    return number


def parse_row(row: dict[str, str]) -> dict[str, Any]:
    """The provenance facts of one CSV row (scores, labels, the dataset's frame count, fps and duration)."""
    scores = {key: _number(row[col], col) for col, key in SCORES.items() if (row.get(col) or "").strip()}
    labels = {key: row[col].strip() for col, key in LABELS.items() if (row.get(col) or "").strip()}
    facts = {f"dataset_{col}": _number(row[col], col, cast) for col, cast in FACTS.items()
             if (row.get(col) or "").strip()}
    return {"dataset_scores": scores, "dataset_labels": labels, **facts}


def openvid_items(path: str, config: Config) -> list[SourceItem]:
    csv_path = Path(path).expanduser()
    if not csv_path.is_file():
        raise FileNotFoundError(f"OpenVid CSV not found: {path}")
    cfg = config.sources.openvid
    dirs = _video_dirs(csv_path, cfg.video_dir)
    with open(csv_path, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        missing = [c for c in REQUIRED if c not in (reader.fieldnames or [])]
        if missing:
            raise ValueError(f"{path} is not an OpenVid-1M CSV: no column {', '.join(missing)} "
                             f"(found: {', '.join(reader.fieldnames or [])})")
        rows = list(reader)
    items: list[SourceItem] = []
    seen: set[str] = set()
    for number, row in enumerate(rows, start=2):  # line 1 is the header
        name = (row.get("video") or "").strip()
        clip_id = "openvid-" + hashlib.sha256(f"{name or number}".encode()).hexdigest()[:16]
        provenance: dict[str, Any] = {"name": name, "csv_line": number, "dataset": "OpenVid-1M",
                                      "license": cfg.license, "attribution": cfg.attribution,
                                      "caption": (row.get("caption") or "").strip(), "caption_origin": "openvid"}
        error = None
        try:
            provenance.update(parse_row(row))
        except ValueError as exc:
            error = f"CSV line {number}: {exc}"
        video = next((d / name for d in dirs if name and (d / name).is_file()), None)
        if not name:
            error = error or f"CSV line {number}: empty 'video' column"
        elif video is None:
            error = error or f"CSV line {number}: video {name} not found in {', '.join(str(d) for d in dirs)}"
        if clip_id in seen:
            clip_id = f"{clip_id}-l{number}"
            error = error or f"CSV line {number}: video {name} is listed twice"
        seen.add(clip_id)
        uri = str(video.resolve()) if video is not None else f"{csv_path.resolve()}#line={number}"
        items.append(SourceItem(clip_id, "openvid", uri, str(video) if video is not None and not error else None,
                                provenance, error=error))
    return items
