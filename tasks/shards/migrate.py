"""`remind-curate migrate OLD NEW`: rewrite shards of an older schema version as the current one.

OLD is a shard, a folder of shards or an ingest output; NEW gets ``shards/`` with the same shard names (and OLD's
manifest.parquet, run.json and config.yaml when OLD is an ingest output). Shards are read with the validator's
hostile-safe reader; a sample it refuses is left out and reported. Each shard is written under NEW/.tmp and renamed
into place when complete. The new shards are validated before the command reports success.
"""
from __future__ import annotations

import os
import shutil
import tarfile
from collections import Counter
from dataclasses import dataclass, field
from io import BytesIO
from pathlib import Path

from schemas.migrate import migrate_members
from schemas.version import SCHEMA_VERSION, SchemaVersionError
from tasks.shards.validate import Problem, read_shard, shard_paths

COPIED = ("manifest.parquet", "run.json", "config.yaml")


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


def _write(path: Path, samples: list[tuple[str, dict[str, bytes]]]) -> None:
    tmp = path.parent.parent / ".tmp" / f"{path.name}.part"
    tmp.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(tmp, "w", format=tarfile.USTAR_FORMAT) as tar:
        for key, members in samples:
            for ext, data in members.items():
                info = tarfile.TarInfo(f"{key}.{ext}")
                info.size, info.mode, info.mtime = len(data), 0o444, 0
                tar.addfile(info, BytesIO(data))
    with open(tmp, "rb+") as handle:
        os.fsync(handle.fileno())
    os.replace(tmp, path)


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
        migrated: list[tuple[str, dict[str, bytes]]] = []
        for item in read_shard(shard):
            if isinstance(item, Problem):
                result.problems.append(item)
                continue
            key = str(item["__key__"])
            if item["__problems__"]:
                result.problems += [Problem(shard.name, key, p) for p in item["__problems__"]]
                continue
            members = {k: v for k, v in item.items() if not k.startswith("__")}
            try:
                members, source, _ = migrate_members(members)
            except (SchemaVersionError, ValueError, KeyError, TypeError) as exc:
                result.problems.append(Problem(shard.name, key, f"not migrated: {type(exc).__name__}: {exc}"))
                continue
            result.from_versions[source] += 1
            migrated.append((key, members))
        if migrated:
            _write(new / "shards" / shard.name, migrated)
            result.shards.append(shard.name)
            result.samples += len(migrated)
    shutil.rmtree(new / ".tmp", ignore_errors=True)
    if (old / "shards").is_dir():
        for name in COPIED:
            if (old / name).is_file():
                shutil.copy2(old / name, new / name)
    return result
