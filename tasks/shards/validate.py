"""`remind-curate validate PATH`: check every sample of a shard, a folder of shards or an ingest output.

Shards may come from anyone: they are read with ``schemas.shards`` (nothing extracted, executed or followed; what
it refuses is named) and each member is hashed and judged as it streams (``schemas.sample_stream``), so time is
linear in the bytes read and memory is bounded whatever a shard holds. Each finding is one line:
``shard: key: problem``.
"""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from schemas.sample_stream import SampleFacts, SampleReader
from schemas.shards import Finding, SampleStream, ShardReadError, printable, raw_samples, read_shard
from schemas.validation import findings
from tasks.shards.report import KeyIndex, Problem, SpillList, ValidationReport

__all__ = ["Problem", "ValidationReport", "iter_samples", "shard_paths", "validate_path"]


def one_line(text: str, limit: int = 2000) -> str:
    """A problem as one printable line: text from a shard (a JSON key, a name) cannot forge or break report lines."""
    if text.isprintable():  # the usual case, in one C-level pass
        return text if len(text) <= limit else text[:limit] + "..."
    text = "".join(c if c.isprintable() else c.encode("unicode_escape", "backslashreplace").decode("ascii")
                   for c in text)
    return text if len(text) <= limit else text[:limit] + "..."


def shard_paths(path: Path) -> list[Path]:
    path = Path(path)
    if path.is_file() or (path.exists() and not path.is_dir()):
        return [path]
    if (path / "shards").is_dir():
        path = path / "shards"
    if not path.is_dir():
        raise FileNotFoundError(f"no shard, shard folder or ingest output at {path}")
    return sorted(path.glob("*.tar"))


def iter_samples(shard: Path) -> Iterator[dict[str, Any]]:
    """The raw samples of a trusted shard, whole ({"__key__": ..., ext: bytes}); validate streams instead."""
    return raw_samples(Path(shard))


def read_facts(stream: SampleStream, decode_video: bool, tee: Any = None) -> SampleFacts:
    """One sample's facts, each member judged as it streams (``tee(ext, chunks)`` sees the same chunks)."""
    reader = SampleReader(stream.key, decode_video)
    try:
        for member in stream.members():
            chunks = member.chunks() if tee is None else tee(member.ext, member.chunks())
            reader.add(member.ext, member.size, chunks)
    except ShardReadError as exc:
        stream.broken = str(exc)
    reader.facts.refused, reader.facts.broken, reader.facts.unlisted = stream.refused, stream.broken, stream.unlisted
    return reader.facts


def check_stream(stream: SampleStream, decode_video: bool, tee: Any = None
                 ) -> tuple[SampleFacts, list[tuple[str, str]]]:
    """(facts, [(check, problem)]) of one streamed sample; a validator bug on hostile input is a finding."""
    facts = read_facts(stream, decode_video, tee)
    try:
        return facts, findings(facts)
    except Exception as exc:  # noqa: BLE001 - never a crash on hostile input
        return facts, [("internal", f"internal error while checking: {type(exc).__name__}: {exc}")]


def validate_path(path: Path, decode_video: bool = True) -> ValidationReport:
    shards = shard_paths(path)
    problems: SpillList[Problem] = SpillList()
    keys: SpillList[str] = SpillList()
    seen = KeyIndex()
    if not shards:
        problems.append(Problem(str(path), "-", "no .tar shard found"))
    for shard in shards:
        for item in read_shard(shard):
            if isinstance(item, Finding):
                problems.append(Problem(shard.name, item.key, one_line(item.problem), "reader"))
                continue
            key = printable(item.key)
            keys.append(key)
            if (before := seen.first_seen(key, shard.name)) is not None:
                problems.append(Problem(shard.name, key, f"duplicate key (also in {before})", "duplicate-key"))
            _, found = check_stream(item, decode_video)
            problems += [Problem(shard.name, key, one_line(problem), name) for name, problem in found]
    return ValidationReport(len(shards), len(keys), problems, keys)
