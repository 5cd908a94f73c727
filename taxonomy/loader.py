"""Load the taxonomy YAML with readable validation errors, and render it as a plain-text table."""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from taxonomy.model import GROUPS, Taxonomy

DEFAULT_PATH = Path(__file__).with_name("events.yaml")


def _event_label(raw: Any, index: int) -> str:
    """'event <id> (events[i])' when the raw entry has an id, else 'events[i]'."""
    try:
        event_id = raw["events"][index]["id"]
    except (KeyError, IndexError, TypeError):
        return f"events[{index}]"
    return f"event {event_id!r} (events[{index}])"


def _describe(error: ValidationError, raw: Any, source: str) -> str:
    """One line per pydantic error, naming the offending event id and field."""
    lines = []
    for err in error.errors():
        loc = list(err["loc"])
        msg = err["msg"].removeprefix("Value error, ")
        if loc[:1] == ["events"] and len(loc) >= 2 and isinstance(loc[1], int):
            where = _event_label(raw, loc[1])
            field = ".".join(str(part) for part in loc[2:])
            where += f": field {field!r}" if field else ""
        elif loc:
            where = f"field {'.'.join(str(part) for part in loc)!r}"
        else:
            where = ""
        got = ""
        if loc and err["type"] not in ("missing", "model_type"):
            shown = repr(err["input"])
            got = f" (got {shown if len(shown) <= 80 else shown[:77] + '...'})"
        lines.append(f"{where}: {msg}{got}" if where else msg)
    return f"invalid taxonomy {source}:\n  " + "\n  ".join(lines)


def parse_taxonomy(raw: Any, source: str = "<data>") -> Taxonomy:
    """Validate already-parsed YAML data; ValueError naming the offending id and field on failure."""
    if not isinstance(raw, dict):
        raise ValueError(f"invalid taxonomy {source}: top level must be a mapping, got {type(raw).__name__}")
    try:
        return Taxonomy.model_validate(raw)
    except ValidationError as err:
        raise ValueError(_describe(err, raw, source)) from None


def _load(path: Path) -> Taxonomy:
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        raise ValueError(f"invalid taxonomy {path}: not valid YAML: {err}") from None
    return parse_taxonomy(raw, str(path))


@lru_cache(maxsize=1)
def _load_default() -> Taxonomy:
    return _load(DEFAULT_PATH)


def load_taxonomy(path: str | Path | None = None) -> Taxonomy:
    """Load and validate a taxonomy YAML (default: the packaged ``events.yaml``, loaded once and cached).

    Raises ValueError naming the offending event id and field when the file does not validate.
    """
    if path is None:
        return _load_default()
    return _load(Path(path))


def format_taxonomy_table(tax: Taxonomy, group: str | None = None) -> str:
    """Plain-text table of id, group, importance and first keyword, then a per-group count summary.

    Rows are sorted by group (Table 7 order) then importance descending, ties by id.
    """
    events = tax.in_group(group) if group is not None else list(tax.events)
    events.sort(key=lambda e: (GROUPS.index(e.group), -e.importance, e.id))
    header = ("id", "group", "importance", "first keyword")
    rows = [(e.id, e.group, f"{e.importance:.4f}", e.keywords[0]) for e in events]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(3)]

    def line(cells: tuple[str, ...]) -> str:
        return "  ".join(cell.ljust(width) for cell, width in zip(cells[:3], widths)) + "  " + cells[3]

    out = [line(header), line(tuple("-" * w for w in widths) + ("-" * len(header[3]),))]
    out += [line(row) for row in rows]
    counts = {g: sum(1 for e in events if e.group == g) for g in GROUPS if group is None or g == group}
    out.append("")
    out.append(f"types per group (taxonomy version {tax.version}):")
    out += [f"  {g.ljust(max(map(len, counts)))}  {n}" for g, n in counts.items()]
    out.append(f"  {'total'.ljust(max(map(len, counts)))}  {len(events)}")
    return "\n".join(out)
