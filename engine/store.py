"""Where a run's OUT lives: one small interface, a local implementation here and an S3 one (engine.store_s3).

The stages always write a Path-based run folder (``engine.run``); the store says what else happens at the points
where outputs become durable: a clip committed, a shard published, the run finished. For a local OUT the folder is
the truth and those points do nothing; for ``s3://bucket/prefix`` the folder is a local working copy and the bucket
is the truth. The implementation is chosen by the URL alone (``engine.stores.open_store``), never by branches in
the callers.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from schemas.shards import shard_keys as shard_members


class StorageError(RuntimeError):
    """OUT on object storage is misconfigured; the message is the whole one-line answer."""


def is_url(out: str | Path) -> bool:
    """An object-store URL (``scheme://...``), as opposed to a folder."""
    return isinstance(out, str) and "://" in out and not out.startswith("file://")


class OutputStore:
    """The operations every store offers. ``local`` is the run folder the stages write; ``url`` is OUT as the user
    gave it. The defaults are the local store's: the folder is the truth, nothing moves."""

    url: str
    local: Path

    def for_node(self) -> OutputStore:
        """The store as a Ray worker on another node uses it (a folder every node mounts: the same one)."""
        return self

    # opening and closing: one writer per OUT
    def take_lease(self) -> None:
        """Become the one writer of OUT across machines (a local folder's lock is taken by ``engine.run``)."""

    def give_back_lease(self) -> None:
        pass

    def pull(self, local: Path) -> None:
        """Bring the run folder in line with the truth, under the run's lock, before ``run.json`` is read."""

    def push_identity(self, run: Any) -> None:
        """Make the run's identity (run.json, config.yaml) durable."""

    # as the run goes
    def commit_clip(self, run: Any, clip_id: str, window_ids: list[str], keys: list[str]) -> None:
        """A clip's outputs are written locally (its ledger entry last): make them durable in that order."""

    def checkpoint(self) -> None:
        """Called after each result while the run goes: keep what a resume must list cheap to list."""

    def refresh(self) -> None:
        """Before packing: bring down what workers on other machines committed."""

    def publish_shard(self, path: Path, keys: list[str]) -> None:
        """A complete shard was renamed into ``shards/``: make it visible whole."""

    def drop_samples(self, keys: Iterable[str]) -> None:
        """Staged copies of samples now in a published shard are no longer needed."""

    def push_outputs(self, run: Any) -> None:
        """The run's summary (manifest, metrics, previews, card, report last) is written: make it durable."""

    # what is published
    def shard_sizes(self) -> dict[str, int]:
        """name -> bytes of every published shard."""
        return {p.name: p.stat().st_size for p in sorted((self.local / "shards").glob("shard-*.tar"))}

    def published_keys(self, members: Callable[[Any], dict[str, list[str]]] = shard_members) -> dict[str, str]:
        """key -> shard name over every published shard."""
        index: dict[str, str] = {}
        for path in sorted((self.local / "shards").glob("shard-*.tar")):
            index.update({key: path.name for key in members(path)})
        return index

    def local_shard(self, run: Any, name: str) -> Path:
        """A published shard as a local file."""
        return run.shards / name


@dataclass
class LocalStore(OutputStore):
    """OUT is a folder (local disk, or a filesystem every node mounts)."""

    url: str
    local: Path
