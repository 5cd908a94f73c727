"""Download Pexels video files into a content-addressed store: ``<store>/videos/<sha[:2]>/<sha>.mp4``.

A file is streamed to ``<store>/tmp`` with byte and time limits, verified to decode, hashed, then renamed into
place, so the store never holds a partial file. ``<store>/index.json`` maps Pexels ids to stored files: a rerun
reuses them instead of downloading again. File names never come from the server.
"""
from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

import av
import requests
import urllib3
from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_random_exponential

from schemas.config import PexelsConfig
from tasks.sources.pexels.client import USER_AGENT, PexelsClient
from tasks.sources.pexels.errors import BudgetExhausted, PexelsAPIError
from tasks.sources.pexels.fileio import locked, read_json, write_json_atomic

log = logging.getLogger(__name__)

CHUNK_BYTES = 1 << 16
VERIFY_FRAMES = 3


class _Retryable(Exception):
    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.attempts = 1


class _Permanent(_Retryable):
    pass


class _LinkExpired(_Permanent):
    pass


def select_file(video: dict[str, Any], config: PexelsConfig) -> tuple[dict[str, Any] | None, str | None]:
    """(smallest suitable video_file, None) or (None, why nothing fits).

    Suitable: mp4 (not hls), landscape (w > h), width >= min_width, fps >= min_fps when fps is known, and the
    video lasts at least min_duration_s.
    """
    duration = video.get("duration")
    if not isinstance(duration, (int, float)) or duration < config.min_duration_s:
        return None, "too_short"
    fits: list[dict[str, Any]] = []
    for f in video.get("video_files") or []:
        width, height, fps, link = f.get("width"), f.get("height"), f.get("fps"), str(f.get("link") or "")
        if f.get("quality") == "hls" or "mpegurl" in str(f.get("file_type", "")).lower() or ".m3u8" in link:
            continue
        if not link.startswith(("http://", "https://")) or not isinstance(width, int) or not isinstance(height, int):
            continue
        if width <= height or width < config.min_width:
            continue
        if isinstance(fps, (int, float)) and fps < config.min_fps:
            continue
        fits.append(f)
    if not fits:
        return None, "no_suitable_file"
    return min(fits, key=lambda f: (f["width"] * f["height"], f["width"], int(f.get("id") or 0))), None


def file_meta(f: dict[str, Any]) -> dict[str, Any]:
    """The parts of a video_file worth recording (never the signed link)."""
    return {"file_id": f.get("id"), "width": f.get("width"), "height": f.get("height"), "fps": f.get("fps"),
            "quality": f.get("quality")}


@dataclass(frozen=True)
class DownloadResult:
    """What became of one video. ``reason`` is a human-readable failure; ``reason_code`` a stats label."""

    status: Literal["downloaded", "reused", "duplicate", "unsuitable", "failed"]
    path: Path | None = None
    sha256: str | None = None
    file: dict[str, Any] | None = None
    reason_code: str | None = None
    reason: str | None = None
    duplicate_of: str | None = None
    retrieved_at: str | None = None  # ISO date the file was first stored


class VideoStore:
    """The content-addressed file store and its id index, under ``root``."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.index_path = root / "index.json"
        self.tmp_dir = root / "tmp"
        self.tmp_dir.mkdir(parents=True, exist_ok=True)

    def path_for(self, sha256: str) -> Path:
        return self.root / "videos" / sha256[:2] / f"{sha256}.mp4"

    def lookup(self, video_id: int) -> dict[str, Any] | None:
        """The index entry of a stored video whose file is still present."""
        entry = read_json(self.index_path, {}).get(str(video_id))
        if not isinstance(entry, dict) or not self.path_for(str(entry.get("sha256", "xx"))).is_file():
            return None
        return entry

    def owner_of(self, sha256: str) -> str | None:
        """The first Pexels id indexed with this content, if any."""
        for vid, entry in sorted(read_json(self.index_path, {}).items()):
            if isinstance(entry, dict) and entry.get("sha256") == sha256:
                return vid
        return None

    def record(self, video_id: int, entry: dict[str, Any]) -> None:
        with locked(self.index_path):
            index = read_json(self.index_path, {})
            index[str(video_id)] = entry
            write_json_atomic(self.index_path, index)

    def publish(self, tmp: Path, sha256: str) -> tuple[Path, bool]:
        """Move a verified temp file into place. Returns (final path, True if that content was already stored)."""
        final = self.path_for(sha256)
        final.parent.mkdir(parents=True, exist_ok=True)
        if final.is_file():
            tmp.unlink(missing_ok=True)
            return final, True
        os.replace(tmp, final)
        return final, False

    def clean_tmp(self, older_than_s: float) -> None:
        """Remove partial files left by a killed run (a live download touches its file within its deadline)."""
        cutoff = time.time() - older_than_s
        for part in self.tmp_dir.glob("*.part"):
            with contextlib.suppress(FileNotFoundError):
                if part.stat().st_mtime < cutoff:
                    part.unlink()


def verify_decodes(path: Path, frames: int = VERIFY_FRAMES) -> None:
    """Raise _Retryable('corrupt', ...) unless the file has a video stream and its first frames decode."""
    container = None
    try:
        container = av.open(str(path))
        if not container.streams.video:
            raise _Permanent("no_video_stream", "the file has no video stream")
        decoded = 0
        for _ in container.decode(video=0):
            decoded += 1
            if decoded >= frames:
                break
        if decoded == 0:
            raise _Retryable("corrupt", "no frame decodes")
    except _Retryable:
        raise
    except Exception as exc:  # noqa: BLE001 - PyAV raises many error types for a broken file
        raise _Retryable("corrupt", f"the file does not decode ({type(exc).__name__})") from None
    finally:
        if container is not None:
            container.close()


def _stream_to(session: requests.Session, link: str, tmp: Path, config: PexelsConfig) -> str:
    """Stream ``link`` into ``tmp`` (no Authorization header: the key never goes to a file host). Returns sha256."""
    deadline = time.monotonic() + config.download_timeout_s
    timeout = min(config.request_timeout_s, config.download_timeout_s)
    digest, total, expected, encoded = hashlib.sha256(), 0, None, False
    try:
        with session.get(link, stream=True, timeout=(timeout, timeout), headers={"User-Agent": USER_AGENT}) as resp:
            status = resp.status_code
            if status in (403, 410):
                raise _LinkExpired("link_expired", f"the file link was refused (HTTP {status}); it may have expired")
            if status == 429 or status >= 500:
                raise _Retryable(f"http_{status}", f"the file host answered HTTP {status}")
            if status >= 300:
                raise _Permanent(f"http_{status}", f"the file host answered HTTP {status}")
            length = resp.headers.get("Content-Length")
            # Content-Length counts encoded bytes; we count decoded ones, so compare only for identity encoding.
            encoded = resp.headers.get("Content-Encoding", "identity").lower() not in ("", "identity")
            expected = int(length) if length and length.isdigit() else None
            if expected is not None and expected > config.max_download_bytes:
                raise _Permanent("too_large", f"the file is {expected} bytes (limit {config.max_download_bytes})")
            with open(tmp, "wb") as out:
                # read1 returns after one socket read, so the deadline is checked even against a trickling server.
                while chunk := resp.raw.read1(CHUNK_BYTES, decode_content=True):
                    total += len(chunk)
                    if total > config.max_download_bytes:
                        raise _Permanent("too_large", f"the file exceeds {config.max_download_bytes} bytes")
                    if time.monotonic() > deadline:
                        raise _Retryable("timeout", f"the download took longer than {config.download_timeout_s} s")
                    out.write(chunk)
                    digest.update(chunk)
                out.flush()
                os.fsync(out.fileno())
    except (requests.Timeout, urllib3.exceptions.TimeoutError):
        raise _Retryable("timeout", f"the file host stalled (no data for {timeout} s)") from None
    except urllib3.exceptions.ProtocolError:
        raise _Retryable("truncated", f"truncated: the connection closed after {total} of {expected or '?'} bytes"
                          ) from None
    except (requests.RequestException, urllib3.exceptions.HTTPError, OSError) as exc:
        raise _Retryable("connection_error", f"the download failed ({type(exc).__name__})") from None
    if expected is not None and total != expected and not encoded:
        raise _Retryable("truncated", f"truncated: received {total} of {expected} bytes")
    verify_decodes(tmp)
    return digest.hexdigest()


def _fetch_verified(client: PexelsClient, store: VideoStore, link: str) -> tuple[Path, str]:
    """Download with retries; returns (verified temp file, sha256). Raises _Retryable on final failure."""
    config = client.config
    attempts = 0

    def attempt() -> tuple[Path, str]:
        nonlocal attempts
        attempts += 1
        tmp = store.tmp_dir / f"{uuid.uuid4().hex}.part"
        try:
            return tmp, _stream_to(client.session, link, tmp, config)
        except _Retryable as exc:
            tmp.unlink(missing_ok=True)
            exc.attempts = attempts
            raise
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise

    def retryable(exc: BaseException) -> bool:
        return isinstance(exc, _Retryable) and not isinstance(exc, _Permanent)

    retrying = Retrying(
        retry=retry_if_exception(retryable),
        stop=stop_after_attempt(config.retries + 1),
        wait=wait_random_exponential(multiplier=config.backoff_base_s, max=config.backoff_max_s),
        before_sleep=lambda s: log.warning("Pexels download failed (%s); retrying",
                                           getattr(s.outcome.exception(), "reason", "?") if s.outcome else "?"),
        reraise=True,
    )
    return retrying(attempt)


def download_video(client: PexelsClient, store: VideoStore, video: dict[str, Any]) -> DownloadResult:
    """Fetch one video into the store (or reuse it). Never raises for a per-video problem; returns a reason."""
    config = client.config
    video_id = int(video["id"])
    entry = store.lookup(video_id)
    if entry is not None:
        owner = entry.get("duplicate_of")
        return DownloadResult("duplicate" if owner else "reused", store.path_for(entry["sha256"]), entry["sha256"],
                              entry.get("file"), reason_code="duplicate_content" if owner else None,
                              duplicate_of=owner, retrieved_at=entry.get("retrieved_at"))
    chosen, why = select_file(video, config)
    if chosen is None:
        return DownloadResult("unsuitable", reason_code=why, reason=f"no usable file: {why}")
    refreshed = False
    while True:
        try:
            tmp, sha = _fetch_verified(client, store, str(chosen["link"]))
            break
        except _LinkExpired as exc:
            if refreshed:
                return _failed(chosen, "link_expired", f"{exc}, also after fetching a fresh link")
            refreshed = True
            try:  # signed CDN links expire: the video object carries fresh ones
                fresh = client.video(video_id)
            except (BudgetExhausted, PexelsAPIError) as err:
                return _failed(chosen, "link_expired", f"{exc}; a fresh link could not be fetched: {err}")
            chosen, why = select_file(fresh, config)
            if chosen is None:
                return DownloadResult("failed", reason_code="link_expired",
                                      reason=f"{exc}; the refreshed video has no usable file ({why})")
        except _Retryable as exc:
            return _failed(chosen, exc.reason, f"download failed after {exc.attempts} attempt(s): {exc}")
    owner = store.owner_of(sha)
    path, existed = store.publish(tmp, sha)
    meta = file_meta(chosen)
    duplicate_of = owner if existed and owner is not None and owner != str(video_id) else None
    today = datetime.now(timezone.utc).date().isoformat()
    store.record(video_id, {"sha256": sha, "file": meta, "duration_s": video.get("duration"), "retrieved_at": today,
                            "stored": str(path.relative_to(store.root)), "duplicate_of": duplicate_of})
    if duplicate_of is not None:
        return DownloadResult("duplicate", path, sha, meta, reason_code="duplicate_content",
                              reason=f"same content as pexels-{duplicate_of}", duplicate_of=duplicate_of,
                              retrieved_at=today)
    return DownloadResult("downloaded", path, sha, meta, retrieved_at=today)


def _failed(chosen: dict[str, Any], code: str, reason: str) -> DownloadResult:
    return DownloadResult("failed", file=file_meta(chosen), reason_code=code, reason=reason)
