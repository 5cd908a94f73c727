"""One writer per object-store OUT, across machines: a lease object taken and renewed with S3 conditional writes.

A local OUT is guarded by a lock on its folder (``engine.run.lock_folder``), but two machines writing the same
``s3://`` URL share no folder: two scheduled runs overlapping on two Prefect workers would pack the same keys into
different shards. So a writing run holds ``<prefix>/.lease.json``:

- taken only if absent (``If-None-Match: *``); a second writer is refused, told who holds it and since when;
- renewed every ``ttl / 4`` seconds, only if unchanged since the holder's own last write (``If-Match``: its ETag);
- deleted when the run ends.

A holder killed without releasing it leaves the object behind. It is taken over (``If-Match`` on the ETag read, so
of two writers racing for it one wins) once it has gone ``ttl`` seconds without renewal, measured on the store's
clock (the object's ``LastModified`` against the ``Date`` of the store's response, so no two machines' clocks are
compared), or at once when its holder ran on this machine and that process is gone. A holder that cannot renew
(the lease taken over after it stalled, or the store unreachable for ``ttl``) stops at its next upload.
"""
from __future__ import annotations

import errno
import json
import os
import socket
import threading
import time
import uuid
from email.utils import parsedate_to_datetime
from typing import Any

from engine.pids import alive

LEASE_NAME = ".lease.json"
TTL_ENV = "REMIND_CURATE_S3_LEASE_S"
DEFAULT_TTL_S = 60.0


class LeaseHeldError(RuntimeError):
    """Another live process writes this OUT; the message is the whole one-line answer."""


def lease_ttl_s() -> float:
    raw = os.environ.get(TTL_ENV) or DEFAULT_TTL_S
    try:
        ttl = float(raw)
    except ValueError:
        ttl = -1.0
    if not ttl > 0:
        raise ValueError(f"{TTL_ENV} must be a positive number of seconds, got {raw!r}")
    return ttl


class BucketLease:
    def __init__(self, fs: Any, bucket: str, root: str, url: str, ttl_s: float | None = None):
        self.fs, self.bucket, self.url = fs, bucket, url
        self.key = f"{root}/{LEASE_NAME}".split("/", 1)[1]
        self.ttl_s = float(ttl_s) if ttl_s is not None else lease_ttl_s()
        self.holder = {"owner": uuid.uuid4().hex, "host": socket.gethostname(), "pid": os.getpid()}
        self.etag: str | None = None
        self.lost: str | None = None
        self._last_renewal = 0.0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- the store -------------------------------------------------------------------------------------------------
    def _put(self, **condition: str) -> str:
        body = json.dumps({**self.holder, "taken_at": time.time()}).encode()
        answer = self.fs.call_s3("put_object", Bucket=self.bucket, Key=self.key, Body=body, **condition)
        return answer["ETag"]

    def _read(self) -> tuple[dict[str, Any], str, float] | None:
        """(holder, ETag, seconds since its last renewal by the store's clock), or None when there is none.
        The holder is read after the ETag: a lease renewed in between fails the take-over's ``If-Match``."""
        try:
            head = self.fs.call_s3("head_object", Bucket=self.bucket, Key=self.key)
            body = self.fs.cat_file(f"{self.bucket}/{self.key}")
        except FileNotFoundError:
            return None
        try:
            holder = json.loads(body)
        except ValueError:
            holder = {}
        now = parsedate_to_datetime(head["ResponseMetadata"]["HTTPHeaders"]["date"])
        return holder, head["ETag"], (now - head["LastModified"]).total_seconds()

    # -- taking, keeping, giving back ------------------------------------------------------------------------------
    def acquire(self) -> BucketLease:
        try:
            self.etag = self._put(IfNoneMatch="*")
        except FileExistsError:
            self._take_over()
        self._last_renewal = time.monotonic()
        self._thread = threading.Thread(target=self._renew_loop, name="bucket-lease", daemon=True)
        self._thread.start()
        return self

    def live_holder(self) -> str | None:
        """Who writes this URL now ("HOST pid N, lease renewed S s ago"), or None when nobody's lease is live."""
        found = self._read()
        return None if found is None else self._live(*found)

    def _live(self, holder: dict[str, Any], etag: str, age: float) -> str | None:
        here = holder.get("host") == self.holder["host"] and isinstance(holder.get("pid"), int)
        if (here and not alive(holder["pid"])) or age >= self.ttl_s:
            return None
        return f"{holder.get('host', '?')} pid {holder.get('pid', '?')}, lease renewed {age:.0f} s ago"

    def _take_over(self) -> None:
        found = self._read()
        if found is None:  # released between our two requests
            self.etag = self._put(IfNoneMatch="*")
            return
        holder, etag, age = found
        who = self._live(holder, etag, age)
        if who is not None:
            raise LeaseHeldError(
                f"another remind-curate process ({who}) is writing {self.url}; a lease expires "
                f"{self.ttl_s:g} s after its holder stops renewing it ({TTL_ENV})")
        try:
            self.etag = self._put(IfMatch=etag)
        except OSError as exc:  # someone else took it over first (412), or is writing it now (409)
            raise LeaseHeldError(f"another remind-curate process took over the lease of {self.url} first") from exc

    def _renew_loop(self) -> None:
        while not self._stop.wait(self.ttl_s / 4):
            try:
                self.etag = self._put(IfMatch=self.etag)
                self._last_renewal = time.monotonic()
            except FileNotFoundError:
                self.lost = "its lease object was deleted"
            except OSError as exc:
                if exc.errno in (errno.EINVAL, errno.EBUSY):  # as s3fs maps 412 (precondition failed) and 409
                    self.lost = "another process took its lease over"
                elif time.monotonic() - self._last_renewal > self.ttl_s:
                    self.lost = f"its lease could not be renewed for {self.ttl_s:g} s ({type(exc).__name__})"
            if self.lost:
                return

    def check(self) -> None:
        """Raise when this run no longer holds the lease: it must not write to the store again."""
        if self.lost is None and time.monotonic() - self._last_renewal > self.ttl_s:
            self.lost = f"its lease could not be renewed for {self.ttl_s:g} s"
        if self.lost is not None:
            raise LeaseHeldError(f"stopped writing {self.url}: {self.lost}; rerun the command to resume")

    def release(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        if self.lost is None and self.etag is not None:
            try:
                found = self._read()
                if found is not None and found[0].get("owner") == self.holder["owner"]:
                    self.fs.call_s3("delete_object", Bucket=self.bucket, Key=self.key)
            except OSError:  # unreachable now: the lease expires on its own after ttl
                pass
        self.etag = None

