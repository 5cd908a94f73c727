"""Where training reads and writes: a local folder or ``s3://bucket/prefix`` (any S3-compatible store).

Endpoint and credentials come only from the standard AWS environment (``AWS_ENDPOINT_URL`` or
``AWS_ENDPOINT_URL_S3`` for MinIO or another store, ``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``,
``AWS_DEFAULT_REGION``...); a URL carries none. Paths are pyarrow filesystem paths: ``bucket/prefix/...`` on S3,
absolute local paths otherwise, so Ray Data (``read_webdataset``) and Ray Train (``RunConfig.storage_filesystem``)
take them with the filesystem as they are. Every node reads and writes the bucket itself: nothing crosses nodes
through a local disk.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

S3_SCHEME = "s3://"


def is_url(location: str | Path) -> bool:
    return str(location).startswith(S3_SCHEME)


def s3_filesystem() -> Any:
    """pyarrow's S3 filesystem configured from the AWS environment (the endpoint passed explicitly)."""
    import pyarrow.fs

    kwargs: dict[str, Any] = {}
    endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
    if endpoint:
        parsed = urlparse(endpoint if "://" in endpoint else f"https://{endpoint}")
        kwargs.update(endpoint_override=parsed.netloc + parsed.path.rstrip("/"), scheme=parsed.scheme)
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    if region:
        kwargs["region"] = region
    return pyarrow.fs.S3FileSystem(**kwargs)


def resolve(location: str | Path) -> tuple[Any, str]:
    """(pyarrow filesystem, path in it) of a local folder or an ``s3://bucket/prefix`` URL."""
    import pyarrow.fs

    text = str(location)
    if is_url(text):
        path = text[len(S3_SCHEME):].strip("/")
        if not path:
            raise ValueError(f"{text}: must be s3://bucket/prefix")
        return s3_filesystem(), path
    return pyarrow.fs.LocalFileSystem(), str(Path(text).resolve())


def display(fs: Any, path: str) -> str:
    """The user's spelling of ``path``: an s3:// URL for the bucket, the path itself on a local disk."""
    return S3_SCHEME + path if fs.type_name == "s3" else path


def list_shards(location: str | Path) -> tuple[Any, list[str]]:
    """(filesystem, sorted ``*.tar`` paths directly under ``location``); FileNotFoundError when there is none."""
    import pyarrow.fs

    fs, path = resolve(location)
    infos = fs.get_file_info(pyarrow.fs.FileSelector(path, allow_not_found=True))
    paths = sorted(i.path for i in infos if i.type == pyarrow.fs.FileType.File and i.path.endswith(".tar"))
    if not paths:
        raise FileNotFoundError(f"no *.tar shards in {location}")
    return fs, paths


def read_bytes(fs: Any, path: str) -> bytes:
    with fs.open_input_stream(path) as stream:
        return stream.read()


def write_bytes(fs: Any, path: str, data: bytes) -> None:
    """One object (S3: a single PUT, never visible half-written); local parents are made."""
    fs.create_dir(path.rsplit("/", 1)[0], recursive=True)
    with fs.open_output_stream(path) as stream:
        stream.write(data)


def upload_tree(local: Path, fs: Any, path: str) -> None:
    """Copy every file under ``local`` to ``path`` (same relative names)."""
    for file in sorted(p for p in Path(local).rglob("*") if p.is_file()):
        write_bytes(fs, f"{path}/{file.relative_to(local).as_posix()}", file.read_bytes())


def download_tree(fs: Any, path: str, local: Path) -> int:
    """Copy every file under ``path`` into ``local``; returns how many (0 when ``path`` does not exist)."""
    import pyarrow.fs

    infos = fs.get_file_info(pyarrow.fs.FileSelector(path, recursive=True, allow_not_found=True))
    count = 0
    for info in infos:
        if info.type != pyarrow.fs.FileType.File:
            continue
        target = Path(local) / info.path[len(path):].lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(read_bytes(fs, info.path))
        count += 1
    return count
