"""Migrations between schema versions: steps over one sample's documents, applied only to verified samples.

``remind-curate migrate`` checks every sample with the validator before a step sees it (``migrate_members`` does
the same for a sample held in memory): a sample that fails a check, its checksums included, is never rewritten.
Steps are keyed by the (major, minor) they apply to and chain up to this reader's version:

- 1.0 -> 1.1 adds ``checksums.json`` (SHA-256 of every other member, from the bytes that passed every 1.0 check).
  Nothing is restamped: the documents keep 1.0.0, since a migration cannot invent what the older writer never
  measured (the rules 1.1.0 added bind samples written at 1.1.0; schemas/version.py).

A major bump MUST register a step from the previous major, or readers of the new major cannot be given the old
shards. A step returns the documents it adds or replaces; ``checksums.json`` then follows every changed member.
JSON members are edited as JSON (never round-tripped through the models), so nothing a step does not name changes.
"""
from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass

from schemas.sample_io import CHECKSUMS, json_bytes
from schemas.untrusted import load_json
from schemas.validation import check_sample
from schemas.version import CURRENT, SCHEMA_VERSION, SchemaVersionError, parse_version

Members = dict[str, bytes]
STAMPED = ("meta.json", "graph.json")  # the members that carry schema_version


@dataclass(frozen=True)
class Step:
    source: tuple[int, int]  # the (major, minor) it applies to, any patch
    target: str  # the version the sample is readable as afterwards
    apply: Callable[[Members, dict[str, str]], Members]  # (documents, digest of every member) -> changed documents
    note: str
    restamp: bool = True  # write ``target`` into the stamped documents


class MigrationRefused(ValueError):
    """A sample that fails the validator: it is reported, never rewritten."""


def add_checksums(documents: Members, digests: dict[str, str]) -> Members:
    """1.0 -> 1.1: ``checksums.json`` over every member, unless the sample already has one (it was verified)."""
    if CHECKSUMS in digests:
        return {}
    return {CHECKSUMS: checksums_json(digests)}


STEPS: list[Step] = [
    Step((1, 0), "1.1.0", add_checksums, "adds checksums.json (required from 1.1.0)", restamp=False),
]


def checksums_json(digests: dict[str, str]) -> bytes:
    return json_bytes({"sha256": {ext: digest for ext, digest in digests.items() if ext != CHECKSUMS}})


def version_of(documents: Members) -> str:
    meta = load_json(documents["meta.json"])
    if not isinstance(meta, dict):
        raise SchemaVersionError("meta.json is not a JSON object")
    version = meta.get("schema_version", "1.0.0")
    parse_version(version)
    return str(version)


def plan(version: str) -> list[Step]:
    """The steps from ``version`` to this reader's; SchemaVersionError when there is no way."""
    current = parse_version(version)
    if current[0] > CURRENT[0]:
        raise SchemaVersionError(f"schema_version {version} is newer than this program's {SCHEMA_VERSION}: "
                                 "upgrade remind-curate (`pip install --upgrade remind-curate`)")
    steps: list[Step] = []
    while (step := next((s for s in STEPS if s.source == current[:2]), None)) is not None:
        steps.append(step)
        current = parse_version(step.target)
    if current[0] != CURRENT[0]:
        raise SchemaVersionError(f"no migration from schema {current[0]}.x is registered (schemas/migrate.py): "
                                 f"this remind-curate reads {CURRENT[0]}.x only")
    return steps


def _stamp(documents: Members, version: str) -> Members:
    out = {}
    for entry in STAMPED:
        if entry in documents:
            document = load_json(documents[entry])
            document["schema_version"] = version
            out[entry] = json_bytes(document)
    return out


def migrate_documents(documents: Members, digests: dict[str, str]) -> tuple[Members, str, list[Step]]:
    """(the members to write instead of or beside the sample's own, the version it had, the steps applied).

    ``documents``: the sample's JSON members; ``digests``: SHA-256 of every member. The caller has verified the
    sample. Raises SchemaVersionError when no chain of steps leads here."""
    source = version_of(documents)
    steps = plan(source)
    changed: Members = {}
    for step in steps:
        current = {**documents, **changed}
        now = {**digests, **{ext: hashlib.sha256(data).hexdigest() for ext, data in changed.items()}}
        changed.update(step.apply(current, now))
        if step.restamp:
            changed.update(_stamp({**documents, **changed}, step.target))
    if set(changed) - {CHECKSUMS} and (CHECKSUMS in digests or CHECKSUMS in changed):
        now = {**digests, **{ext: hashlib.sha256(data).hexdigest() for ext, data in changed.items()}}
        changed[CHECKSUMS] = checksums_json(now)  # the digests follow the members a step rewrote
    return changed, source, steps


def migrate_members(members: Members, key: str | None = None, decode_video: bool = True
                    ) -> tuple[Members, str, list[Step]]:
    """A whole sample held in memory: (its members readable by this reader, checksums first; the version it had;
    the steps applied). Raises MigrationRefused when it fails a check (``key``: the sample's, meta.json's when
    None), SchemaVersionError when no step leads here."""
    problems = check_sample({"__key__": key if key is not None else _key(members), **members}, decode_video)
    if problems:
        raise MigrationRefused("; ".join(problems))
    digests = {ext: hashlib.sha256(data).hexdigest() for ext, data in members.items()}
    changed, source, steps = migrate_documents({k: v for k, v in members.items() if k.endswith("json")}, digests)
    merged = {**members, **changed}
    return {CHECKSUMS: merged.pop(CHECKSUMS)} | merged if CHECKSUMS in merged else merged, source, steps


def _key(members: Members) -> str:
    meta = load_json(members["meta.json"]) if "meta.json" in members else None
    return str(meta.get("key", "")) if isinstance(meta, dict) else ""
