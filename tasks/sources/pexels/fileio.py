"""Atomic JSON files and inter-process locks for the Pexels store's state."""
from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

try:  # filelock also works on platforms without fcntl; fcntl is the fallback on POSIX.
    import filelock as _filelock
except ImportError:  # pragma: no cover - depends on the environment
    _filelock = None


@contextlib.contextmanager
def locked(path: Path, timeout_s: float = 60.0) -> Iterator[None]:
    """Hold an exclusive lock on ``<path>.lock`` (shared by every process using the same store)."""
    lock_path = path.with_name(path.name + ".lock")
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    if _filelock is not None:
        with _filelock.FileLock(str(lock_path), timeout=timeout_s):
            yield
        return
    import fcntl

    with open(lock_path, "a+") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def write_json_atomic(path: Path, data: Any) -> None:
    """Write JSON to a temp file in the same directory, fsync, then rename over ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as handle:
            json.dump(data, handle, sort_keys=True, indent=1)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def read_json(path: Path, default: Any) -> Any:
    """The parsed file, or ``default`` when it is missing or unreadable (a torn file is never produced)."""
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError, UnicodeDecodeError):
        return default
