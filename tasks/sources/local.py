"""`local:PATH`: every video under a folder or fsspec URL, with per-file provenance."""
from __future__ import annotations

import dataclasses
import hashlib
import os
import shutil
import stat
from pathlib import Path

import fsspec

from tasks.records import SourceItem

VIDEO_SUFFIXES = (".mp4", ".mov", ".avi", ".mkv", ".webm", ".m4v")


def _sha256_file(fs: fsspec.AbstractFileSystem, path: str) -> str:
    digest = hashlib.sha256()
    with fs.open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _special_file(path: str) -> bool:
    """A FIFO, socket or device: reading it to hash it could block forever, so it is not read here (its decode
    runs under the decode deadline and fails with a reason)."""
    try:
        return not stat.S_ISREG(os.stat(path).st_mode)
    except OSError:
        return False


def _fetch(fs: fsspec.AbstractFileSystem, path: str, target: Path) -> Path:
    """``path`` copied once to ``target`` (through a .part file: never a partial file under the final name)."""
    if not target.exists():
        tmp = target.with_suffix(f"{target.suffix}.{os.getpid()}.part")
        target.parent.mkdir(parents=True, exist_ok=True)
        with fs.open(path, "rb") as src, open(tmp, "wb") as dst:
            shutil.copyfileobj(src, dst)
        tmp.rename(target)
    return target


def is_remote(uri: str) -> bool:
    return "://" in uri and not uri.startswith("file://")


def localise(item: SourceItem, run_dir: Path) -> SourceItem:
    """The item with a file to decode on THIS machine: a remote source listed without a local copy (a Ray
    cluster: the driver only hashed it) is fetched into ``run_dir/cache/fetched`` of the node that decodes it."""
    if item.path is not None or item.error or not is_remote(item.uri) or \
            item.uri.split("://", 1)[0] not in fsspec.available_protocols():  # rendered (synthetic://): no file
        return item
    fs, path = fsspec.core.url_to_fs(item.uri)
    suffix = Path(path).suffix.lower()
    name = f"{item.provenance.get('sha256') or hashlib.sha256(item.uri.encode()).hexdigest()}{suffix}"
    return dataclasses.replace(item, path=str(_fetch(fs, path, Path(run_dir) / "cache" / "fetched" / name)))


def local_items(url: str, fetch_dir: Path | None = None) -> list[SourceItem]:
    """One SourceItem per video file (sorted, recursive). Remote files are fetched once into ``fetch_dir`` (None:
    not fetched here; ``localise`` fetches them where they are decoded).

    The clip id is a content hash, so a renamed or copied file is the same clip and a rerun finds its work.
    A file that cannot even be read still yields an item, carrying the error, so it reaches the manifest.
    """
    fs, root = fsspec.core.url_to_fs(url)
    if not fs.exists(root):
        raise FileNotFoundError(f"source folder not found: {url}")
    paths = [root] if fs.isfile(root) else sorted(
        p for p in fs.find(root) if p.lower().endswith(VIDEO_SUFFIXES))
    local = fs.protocol in ("file", "local") or "file" in (fs.protocol if isinstance(fs.protocol, tuple) else ())
    items: list[SourceItem] = []
    for path in paths:
        uri = path if local else fs.unstrip_protocol(path)
        if local and _special_file(path):
            digest = hashlib.sha256(uri.encode()).hexdigest()[:16]
            items.append(SourceItem(f"local-{digest}", "local", uri, path,
                                    {"name": Path(path).name, "license": "unknown (local file)"}))
            continue
        try:
            info = fs.info(path)
            sha = _sha256_file(fs, path)
        except OSError as exc:
            digest = hashlib.sha256(uri.encode()).hexdigest()[:12]
            items.append(SourceItem(f"local-{digest}", "local", uri, None, {"name": Path(path).name},
                                    error=f"unreadable: {exc}"))
            continue
        local_path: str | None = path
        if not local:  # no fetch_dir (a Ray cluster): the worker that decodes it fetches it (``localise``)
            local_path = str(_fetch(fs, path, fetch_dir / f"{sha}{Path(path).suffix.lower()}")) if fetch_dir else None
        provenance = {"name": Path(path).name, "bytes": int(info.get("size") or 0), "sha256": sha,
                      "license": "unknown (local file)"}
        items.append(SourceItem(f"local-{sha[:16]}", "local", uri, local_path, provenance))
    return items
