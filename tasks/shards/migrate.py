"""`remind-curate migrate OLD NEW`: rewrite shards of an older schema version for this reader.

OLD is a shard, a folder of shards or an ingest output; NEW gets ``shards/`` with the same shard names (and OLD's
manifest.parquet, run.json and config.yaml when OLD is an ingest output). Every sample is checked by the validator
as it streams, its members spooled (to disk past 1 MiB each); only a sample with no problem reaches the migration
steps and the writer. A sample that fails, its checksums included, is reported and left out, and the command
exits non-zero. Each shard is written under NEW/.tmp and renamed into place when complete.
"""
from __future__ import annotations

import shutil
import tempfile
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from schemas.migrate import migrate_documents
from schemas.shard_writer import ShardWriter, member_order
from schemas.shards import Finding, SampleStream, printable, read_shard
from schemas.version import SCHEMA_VERSION, SchemaVersionError
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
        return True
    finally:
        spool.close()


def migrate_path(old: Path, new: Path) -> MigrationResult:
    old, new = Path(old), Path(new)
    if new.resolve() == old.resolve() or (new / "shards").resolve() == old.resolve():
        raise ValueError("NEW must differ from OLD (shards are rewritten, never changed in place)")
    shards = shard_paths(old)
    if not shards:
        raise FileNotFoundError(f"no .tar shard under {old}")
    (new / "shards").mkdir(parents=True, exist_ok=True)
    result = MigrationResult(new)
    for shard in shards:
        with ShardWriter(new / "shards" / shard.name, tmp_dir=new / ".tmp") as writer:
            for item in read_shard(shard):
                if isinstance(item, Finding):
                    result.problems.append(Problem(shard.name, item.key, f"not migrated: {item.problem}", "reader"))
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
    return result
