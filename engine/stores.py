"""Which store serves an OUT: chosen by the URL alone (engine.store: the interface and the local store;
engine.store_s3: S3)."""
from __future__ import annotations

from pathlib import Path

from engine.store import LocalStore, OutputStore, is_url
from engine.store_s3 import S3Store, readable_copy as s3_readable_copy


def open_store(out: str | Path, write: bool = True) -> OutputStore:
    """The store for OUT: ``s3://...`` -> S3 (checked before any work: credentials, bucket, access), else a folder."""
    if not is_url(out):
        return LocalStore(str(out), Path(out).resolve())
    return S3Store.connect(str(out), write)


def readable_copy(source: str) -> str:
    """A finished run to read (regenerate's parent) as a local folder: a folder as it is; an object-store run's
    identity, manifest and window cache pulled into its working folder."""
    return s3_readable_copy(source) if is_url(source) else source
