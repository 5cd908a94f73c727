"""What `validate` found, held in bounded memory however many samples and problems a shard holds: the first
``KEPT`` problems and keys stay in memory, the rest go to a temporary file (read back in order when asked), and the
index of keys seen (for duplicates across shards) is a temporary SQLite table."""
from __future__ import annotations

import itertools
import pickle
import sqlite3
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar, overload

T = TypeVar("T")
KEPT = 10_000


@dataclass(frozen=True)
class Problem:
    shard: str
    key: str
    problem: str
    check: str = ""  # the validator check that found it ("reader": the shard reader refused something)

    def __str__(self) -> str:
        return f"{self.shard}: {self.key}: {self.problem}"


class SpillList(Sequence[T], Generic[T]):
    """An append-only list: the first ``KEPT`` items in memory, the rest pickled to a temporary file."""

    def __init__(self, items: Sequence[T] = ()) -> None:
        self._head: list[T] = []
        self._tail: tempfile.SpooledTemporaryFile | None = None
        self._count = 0
        for item in items:
            self.append(item)

    def append(self, item: T) -> None:
        if self._count < KEPT:
            self._head.append(item)
        else:
            if self._tail is None:
                self._tail = tempfile.SpooledTemporaryFile(1 << 20, prefix="remind-validate-")
            self._tail.seek(0, 2)
            pickle.dump(item, self._tail)
        self._count += 1

    def __iadd__(self, items: Sequence[T]) -> SpillList[T]:  # type: ignore[override,misc]
        for item in items:
            self.append(item)
        return self

    def __len__(self) -> int:
        return self._count

    def __iter__(self) -> Iterator[T]:
        yield from self._head
        if self._tail is not None:
            self._tail.seek(0)
            for _ in range(self._count - len(self._head)):
                yield pickle.load(self._tail)  # our own file, written above: trusted

    @overload
    def __getitem__(self, index: int) -> T: ...

    @overload
    def __getitem__(self, index: slice) -> list[T]: ...

    def __getitem__(self, index: int | slice) -> T | list[T]:
        if isinstance(index, slice):
            return list(itertools.islice(self, *index.indices(self._count)))
        if not -self._count <= index < self._count:
            raise IndexError(index)
        index %= self._count
        return self._head[index] if index < len(self._head) else next(itertools.islice(self, index, None))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Sequence) and len(self) == len(other) and all(a == b for a, b in zip(self, other))

    def __repr__(self) -> str:
        shown = [str(item) for item in self[:5]]
        return f"[{', '.join(shown)}{', ...' if self._count > 5 else ''}] ({self._count} in all)"


class KeyIndex:
    """key -> the shard it was first seen in, on disk (a temporary SQLite database)."""

    def __init__(self) -> None:
        self._db = sqlite3.connect("")  # "": a private temporary database on disk
        self._db.execute("CREATE TABLE seen (key TEXT PRIMARY KEY, shard TEXT)")

    def first_seen(self, key: str, shard: str) -> str | None:
        """The shard ``key`` was seen in before, or None (and it is recorded in ``shard``)."""
        row = self._db.execute("SELECT shard FROM seen WHERE key = ?", (key,)).fetchone()
        if row is None:
            self._db.execute("INSERT INTO seen VALUES (?, ?)", (key, shard))
            return None
        return str(row[0])


@dataclass
class ValidationReport:
    shards: int
    samples: int
    problems: Sequence[Problem]
    keys: Sequence[str] = field(default_factory=list)  # every sample key checked, in shard order

    @property
    def ok(self) -> bool:
        return not self.problems and self.samples > 0

    def passed(self) -> set[str]:
        """Keys checked with no problem reported against them."""
        return set(self.keys) - {p.key for p in self.problems}
