"""`remind-curate validate PATH`: check every sample of a shard, a folder of shards or an ingest output."""
from __future__ import annotations

import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from schemas.validation import check_sample


@dataclass(frozen=True)
class Problem:
    shard: str
    key: str
    problem: str

    def __str__(self) -> str:
        return f"{self.shard}: {self.key}: {self.problem}"


@dataclass
class ValidationReport:
    shards: int
    samples: int
    problems: list[Problem]

    @property
    def ok(self) -> bool:
        return not self.problems and self.samples > 0


def shard_paths(path: Path) -> list[Path]:
    path = Path(path)
    if path.is_file():
        return [path]
    if (path / "shards").is_dir():
        path = path / "shards"
    if not path.is_dir():
        raise FileNotFoundError(f"no shard, shard folder or ingest output at {path}")
    return sorted(path.glob("*.tar"))


def iter_samples(shard: Path) -> Iterator[dict[str, bytes]]:
    """Group consecutive members by key, as webdataset does. Raises tarfile.TarError on a broken archive."""
    current: dict[str, bytes] = {}
    with tarfile.open(shard, "r:") as tar:
        for info in tar:
            if not info.isfile():
                continue
            name = Path(info.name).name
            key, _, ext = name.partition(".")
            if current and current["__key__"] != key:  # type: ignore[comparison-overlap]
                yield current
                current = {}
            handle = tar.extractfile(info)
            assert handle is not None
            data = handle.read()
            if len(data) != info.size:
                raise tarfile.ReadError(f"member {info.name} is truncated")
            current.setdefault("__key__", key)  # type: ignore[arg-type]
            current[ext or "(no extension)"] = data
    if current:
        yield current


def validate_path(path: Path, decode_video: bool = True) -> ValidationReport:
    shards = shard_paths(path)
    problems: list[Problem] = []
    seen: dict[str, str] = {}
    samples = 0
    if not shards:
        problems.append(Problem(str(path), "-", "no .tar shard found"))
    for shard in shards:
        try:
            for raw in iter_samples(shard):
                samples += 1
                key = str(raw["__key__"])
                if key in seen:
                    problems.append(Problem(shard.name, key, f"duplicate key (also in {seen[key]})"))
                seen[key] = shard.name
                problems += [Problem(shard.name, key, p) for p in check_sample(raw, decode_video)]
        except (tarfile.TarError, EOFError, OSError) as exc:
            problems.append(Problem(shard.name, "-", f"unreadable shard: {type(exc).__name__}: {exc}"))
    return ValidationReport(len(shards), samples, problems)
