"""Migrations between schema versions, as pure functions over one sample's members ({entry: bytes}).

Readers accept every minor of their major as it is, so a sample of an older minor needs no migration and keeps its
version (the validation rules a later minor added bind only samples written at that minor or later: a migration
cannot invent what the older writer never measured). A major bump MUST register a step from the previous major
(``STEPS[old_major]``), or readers of the new major cannot be given the old shards. ``migrate_members`` chains the
steps from a sample's major to the current one, stamps each step's version and rewrites ``checksums.json``.
JSON members are edited as JSON (never round-tripped through the models), so nothing a step does not name changes.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from schemas.sample_io import CHECKSUMS, json_bytes, with_checksums
from schemas.untrusted import load_json
from schemas.version import CURRENT, SCHEMA_VERSION, SchemaVersionError, parse_version

Members = dict[str, bytes]
STAMPED = ("meta.json", "graph.json")  # the members that carry schema_version


@dataclass(frozen=True)
class Step:
    source: int  # the major it applies to (any minor of it)
    target: str  # the version it produces
    apply: Callable[[Members], Members]
    note: str


# No major bump yet: schema 1.x is the only major. The first 2.0.0 change registers Step(1, "2.0.0", ...) here,
# tested on tests/data/frozen/v1.0.0.
STEPS: dict[int, Step] = {}


def version_of(members: Members) -> str:
    meta = load_json(members["meta.json"])
    if not isinstance(meta, dict):
        raise SchemaVersionError("meta.json is not a JSON object")
    version = meta.get("schema_version", "1.0.0")
    parse_version(version)
    return str(version)


def plan(version: str) -> list[Step]:
    """The steps from ``version`` to the current version; SchemaVersionError when there is no way."""
    current = parse_version(version)
    if current[0] > CURRENT[0]:
        raise SchemaVersionError(f"schema_version {version} is newer than this program's {SCHEMA_VERSION}: "
                                 "upgrade remind-curate")
    steps: list[Step] = []
    while current[0] < CURRENT[0]:
        step = STEPS.get(current[0])
        if step is None:
            raise SchemaVersionError(f"no migration from schema {current[0]}.x is registered (schemas/migrate.py): "
                                     "a major bump needs one")
        steps.append(step)
        current = parse_version(step.target)
    return steps


def _stamp(members: Members, version: str) -> Members:
    out = dict(members)
    for entry in STAMPED:
        if entry in out:
            document = load_json(out[entry])
            document["schema_version"] = version
            out[entry] = json_bytes(document)
    return out


def migrate_members(members: Members) -> tuple[Members, str, list[Step]]:
    """(members readable by this major, the version they had, the steps applied). Raises SchemaVersionError."""
    source = version_of(members)
    steps = plan(source)
    out = {k: v for k, v in members.items() if k != CHECKSUMS}
    for step in steps:
        out = _stamp(step.apply(out), step.target)
    return with_checksums(out), source, steps
