"""`remind-curate migrate OLD NEW`: rewrite shards of an older schema version for this reader.

OLD is a shard, a folder of shards or an ingest output; NEW gets ``shards/`` with the same shard names (and OLD's
manifest.parquet, run.json and config.yaml when OLD is an ingest output) and its dataset card (README.md, info.json:
tasks/publish/card.py) of the samples NEW holds: from OLD's manifest and the config hash its run.json recorded, or,
without a manifest, from the migrated samples' own meta.json. Every sample is checked by the validator
as it streams, its members spooled (to disk past 1 MiB each); only a sample with no problem reaches the migration
steps and the writer. A sample that fails, its checksums included, or repeats a key already read (the first copy
stands), is reported and left out, and the command
exits non-zero. Each shard is written under NEW/.tmp and renamed into place when complete.
"""
from __future__ import annotations

import json
import shutil
import tempfile
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from schemas.manifest import ManifestRow
from schemas.migrate import migrate_documents, version_of
from schemas.shard_writer import ShardWriter, member_order
from schemas.shards import Finding, SampleStream, printable, read_shard
from schemas.untrusted import load_json
from schemas.version import SCHEMA_VERSION, SchemaVersionError
from tasks.publish.card import write_dataset_card
from tasks.publish.manifest import read_manifest
from tasks.shards.report import KeyIndex
from tasks.shards.validate import Problem, check_stream, shard_paths

COPIED = ("manifest.parquet", "run.json", "config.yaml")
SPOOL_IN_MEMORY = 1 << 20


@dataclass
class MigrationResult:
    out: Path
    samples: int = 0
    shards: list[str] = field(default_factory=list)
    from_versions: Counter = field(default_factory=Counter)
    problems: list[Problem] = field(default_factory=list)
    keys: set[str] = field(default_factory=set)  # of the samples written to NEW
    stamped: Counter = field(default_factory=Counter)  # the schema_version they carry after migrating
    rows: list[ManifestRow] | None = None  # made from their meta.json, when OLD has no manifest

    def summary(self) -> str:
        versions = ", ".join(f"{v}: {n}" for v, n in sorted(self.from_versions.items())) or "none"
        return (f"migrate: {self.samples} samples in {len(self.shards)} shards readable by schema {SCHEMA_VERSION} "
                f"(were {versions}) -> {self.out / 'shards'}; {len(self.problems)} left out")


class _Spool:
    """A sample's members as they stream past the validator: in memory up to 1 MiB each, on disk beyond."""

    def __init__(self) -> None:
        self.files: dict[str, IO[bytes]] = {}

    def tee(self, ext: str, chunks: Iterable[bytes]) -> Iterator[bytes]:
        spool = self.files[ext] = tempfile.SpooledTemporaryFile(SPOOL_IN_MEMORY, prefix="remind-migrate-")
        for chunk in chunks:
            spool.write(chunk)
            yield chunk

    def read(self, ext: str) -> bytes:
        self.files[ext].seek(0)
        return self.files[ext].read()

    def close(self) -> None:
        for spool in self.files.values():
            spool.close()


def _migrate_sample(stream: SampleStream, writer: ShardWriter, result: MigrationResult, shard: str) -> bool:
    spool = _Spool()
    try:
        facts, found = check_stream(stream, decode_video=True, tee=spool.tee)
        key = printable(stream.key)
        if found:
            result.problems += [Problem(shard, key, f"not migrated: {problem}", name) for name, problem in found]
            return False
        documents = {ext: spool.read(ext) for ext in spool.files if ext.endswith("json")}
        try:
            changed, source, _ = migrate_documents(documents, facts.digests)
        except (SchemaVersionError, ValueError) as exc:
            result.problems.append(Problem(shard, key, f"not migrated: {exc}", "migrate"))
            return False
        members: list[tuple[str, bytes | IO[bytes]]] = []
        for ext in sorted({*spool.files, *changed}, key=member_order):
            if ext in changed:
                members.append((ext, changed[ext]))
            else:
                spool.files[ext].seek(0)
                members.append((ext, spool.files[ext]))
        writer.add(stream.key, members)
        result.from_versions[source] += 1
        migrated = {**documents, **changed}
        result.keys.add(stream.key)
        result.stamped[version_of(migrated)] += 1
        if result.rows is not None:
            result.rows.append(_row(load_json(migrated["meta.json"]), shard))
        return True
    finally:
        spool.close()


def _row(meta: dict, shard: str) -> ManifestRow:
    """The manifest row of a migrated sample, from its (verified) meta.json: what the card counts."""
    return ManifestRow(run_id=meta["run_id"], clip_id=meta["clip_id"], window=meta["window"],
                       source=meta["source"]["kind"], uri=meta["source"]["uri"], status="accepted", shard=shard,
                       key=meta["key"], parent_key=meta.get("parent_key"), tags=meta.get("tags", []),
                       event_group=meta.get("event_group"), interruption=meta.get("interruption"),
                       caption=meta.get("caption") or None, caption_source=meta.get("caption_source"),
                       license=meta.get("license"), config_hash=meta["config_hash"])


def _write_card(old: Path, new: Path, result: MigrationResult) -> None:
    """NEW's card: OLD's manifest rows (a sample left out is no longer in a shard) or the rows made from the
    samples, the config hash OLD's run recorded (a re-hash of its config.yaml by this version's config model could
    differ), the versions the samples carry."""
    shards = {name: (new / "shards" / name).stat().st_size for name in result.shards}
    rows = result.rows
    if rows is None:
        rows = [row if not row.shard or row.key in result.keys else row.model_copy(update={"shard": None})
                for row in read_manifest(old / "manifest.parquet")]
    run = old / "run.json"
    config_hash = json.loads(run.read_text()).get("config_hash") if (old / "shards").is_dir() and run.is_file() \
        else None
    write_dataset_card(new, rows, config_hash, shards, versions=result.stamped, from_manifest=result.rows is None)


def migrate_path(old: Path, new: Path) -> MigrationResult:
    old, new = Path(old), Path(new)
    if new.resolve() == old.resolve() or (new / "shards").resolve() == old.resolve():
        raise ValueError("NEW must differ from OLD (shards are rewritten, never changed in place)")
    shards = shard_paths(old)
    if not shards:
        raise FileNotFoundError(f"no .tar shard under {old}")
    (new / "shards").mkdir(parents=True, exist_ok=True)
    with_manifest = (old / "shards").is_dir() and (old / "manifest.parquet").is_file()
    result = MigrationResult(new, rows=None if with_manifest else [])
    seen = KeyIndex()
    for shard in shards:
        with ShardWriter(new / "shards" / shard.name, tmp_dir=new / ".tmp") as writer:
            for item in read_shard(shard):
                if isinstance(item, Finding):
                    result.problems.append(Problem(shard.name, item.key, f"not migrated: {item.problem}", "reader"))
                elif (before := seen.first_seen(printable(item.key), shard.name)) is not None:
                    check_stream(item, decode_video=False)  # read past its members; the first copy stands
                    result.problems.append(Problem(shard.name, printable(item.key),
                                                   f"not migrated: duplicate key (also in {before})",
                                                   "duplicate-key"))
                elif _migrate_sample(item, writer, result, shard.name):
                    result.samples += 1
            if writer.keys:
                writer.publish()
                result.shards.append(shard.name)
    shutil.rmtree(new / ".tmp", ignore_errors=True)
    if (old / "shards").is_dir():
        for name in COPIED:
            if (old / name).is_file():
                shutil.copy2(old / name, new / name)
    _write_card(old, new, result)
    return result
