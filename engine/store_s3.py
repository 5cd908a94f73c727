"""The S3 store (``--out s3://bucket/prefix``): a local working folder mirrored to the bucket.

The stages keep writing a Path-based run folder (``engine.run``): for an object-store OUT that folder is a local
working folder (``$REMIND_CURATE_WORKDIR/<name>-<hash of the URL>``, default ``~/.cache/remind-curate/work``) and
this module mirrors it. The object store is the truth:

- on open the run takes the URL's write lease (``engine.bucket_lease``: one writer across machines), then, under
  the local lock, the run's identity, ledger, staged samples and previews come down, and local
  ledger entries or shard copies the store does not have are dropped (their clips are redone, their keys repacked);
- after a clip commits, its window cache, staged samples and thumbnails go up, then its ledger entry LAST;
- each finished shard is published with ONE upload (a PUT, or a multipart upload that becomes visible only when
  completed), so a shard object appears whole or not at all; staged copies of packed samples are then removed;
- manifest, metrics, previews and the report go up when the run ends.

Endpoint and credentials come only from the standard AWS environment (``AWS_ENDPOINT_URL``, ``AWS_ACCESS_KEY_ID``,
``AWS_SECRET_ACCESS_KEY``, ``AWS_DEFAULT_REGION``, ``AWS_PROFILE``...), read by botocore; the URL carries none, and
no message of this module shows them.
"""
from __future__ import annotations

import dataclasses
import errno
import fcntl
import hashlib
import json
import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.s3_catalog import BucketLedger
from engine.store import OutputStore, StorageError, shard_members

PART_BYTES_ENV = "REMIND_CURATE_S3_PART_BYTES"  # multipart part size of shard uploads (s3fs default: 50 MiB)
WORKDIR_ENV = "REMIND_CURATE_WORKDIR"
# A Ray node's own scratch root (set in the node's environment): its workers' working folders live under it, so a
# worker never reads or writes a folder another node (or the driver) made.
SCRATCH_ENV = "REMIND_CURATE_SCRATCH"
_SHARD = re.compile(r"^shard-\d{6}\.tar$")
_SECRET_ENVS = ("AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_ACCESS_KEY_ID")


def _scrub(text: str) -> str:
    """A message without any credential value of the environment (botocore never prints them; belt and braces)."""
    for name in _SECRET_ENVS:
        value = os.environ.get(name, "")
        if len(value) >= 4:
            text = text.replace(value, "***")
    return " ".join(text.split())


def endpoint() -> str:
    return os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL") or "the AWS S3 endpoint"


def explain(exc: BaseException, bucket: str) -> str:
    """One line for an object-store failure, without credentials."""
    name = type(exc).__name__
    if name in ("NoCredentialsError", "PartialCredentialsError"):
        return "no S3 credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or AWS_PROFILE)"
    if name in ("EndpointConnectionError", "ConnectTimeoutError", "ClientConnectorError", "ConnectionError"):
        return f"cannot reach the S3 endpoint {endpoint()} (set AWS_ENDPOINT_URL for MinIO or another store)"
    if isinstance(exc, PermissionError):
        return f"access to bucket {bucket} denied with the configured credentials ({_scrub(str(exc))})"
    return _scrub(f"{name}: {exc}")


def split_url(url: str) -> tuple[str, str, str]:
    """``s3://bucket/prefix`` -> (scheme, bucket, "bucket/prefix"); refuses other schemes and credentials."""
    scheme, _, rest = url.partition("://")
    if scheme != "s3":
        raise StorageError(f"{scheme}:// is not supported (use a local path or s3://bucket/prefix)")
    root = rest.strip("/")
    bucket = root.split("/", 1)[0]
    if not bucket or "@" in bucket or ":" in bucket:
        raise StorageError(f"must be s3://bucket/prefix, with the endpoint and credentials in the AWS_* "
                           f"environment variables, not in the URL (got {scheme}://{'…' if bucket else ''})")
    return scheme, bucket, root


def workdir_for(url: str, node: bool = False) -> Path:
    """The working folder of ``url`` on this machine; ``node``: as a Ray worker of this node sees it (under the
    node's scratch root when it has one)."""
    scratch = os.environ.get(SCRATCH_ENV) if node else None
    base = Path(scratch, "work") if scratch else \
        Path(os.environ.get(WORKDIR_ENV) or "~/.cache/remind-curate/work").expanduser()
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", url.partition("://")[2]).strip("-")[-60:]
    return (base / f"{name}-{hashlib.sha256(url.encode()).hexdigest()[:16]}").resolve()


def _md5(path: Path) -> str:
    digest = hashlib.md5()  # noqa: S324 - S3's ETag of a single-part object, not a security use
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _same(path: Path, info: dict[str, Any]) -> bool:
    """The local file holds the object's bytes (size, and MD5 where the ETag is one)."""
    if not path.is_file() or path.stat().st_size != int(info.get("size", -1)):
        return False
    etag = str(info.get("ETag") or info.get("etag") or "").strip('"')
    return "-" in etag or not etag or _md5(path) == etag


def _files(directory: Path) -> list[Path]:
    return sorted(p for p in directory.rglob("*") if p.is_file()) if directory.is_dir() else []


@dataclass
class S3Store(OutputStore):
    """The object-store side of a run: ``url`` (what users see), ``root`` ("bucket/prefix"), ``local`` (the
    working folder the stages write). Picklable (s3fs re-creates its session), so Ray workers can upload."""

    url: str
    bucket: str
    root: str
    fs: Any
    local: Path
    lease: Any = None  # engine.bucket_lease.BucketLease while this process writes the store (the driver only)
    evict: bool = False  # a worker's own copy: a committed clip's local files go once they are in the bucket
    folded_at: float = dataclasses.field(default_factory=time.monotonic)  # the ledger's last fold (checkpoint)

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "lease": None}  # a Ray worker uploads under the driver's lease

    # -- opening ---------------------------------------------------------------------------------------------------
    @classmethod
    def connect(cls, url: str, write: bool = True) -> S3Store:
        """Check everything before any work: s3fs installed, credentials, endpoint, bucket, write access."""
        url = url.rstrip("/")
        _, bucket, root = split_url(url)
        try:
            import s3fs
        except ImportError as exc:
            raise StorageError(f"{url} needs the s3fs package (pip install -r requirements/base.txt)") from exc
        fs = s3fs.S3FileSystem(skip_instance_cache=True, config_kwargs={
            "connect_timeout": 10, "read_timeout": 120, "retries": {"max_attempts": 3, "mode": "standard"}})
        probe = f"{root}/.remind-curate-probe-{os.getpid()}"
        retries, fs.retries = fs.retries, 1  # a misconfiguration is reported at once, not after backoffs
        try:
            try:
                fs.info(bucket)
            except FileNotFoundError:
                raise StorageError(f"{url}: bucket {bucket} does not exist at {endpoint()}: create it first"
                                   ) from None
            if write:
                from engine.bucket_lease import lease_ttl_s
                from engine.s3_catalog import fold_every_s

                lease_ttl_s()  # a malformed lease TTL or fold interval is a misconfiguration too
                fold_every_s()
                fs.pipe_file(probe, b"")  # write and delete access, before any work
                fs.rm_file(probe)
            elif not fs.exists(f"{root}/run.json"):  # read access, and a run to read
                raise StorageError(f"{url} is not a remind-curate output (no run.json)")
        except StorageError:
            raise
        except ValueError as exc:
            raise StorageError(str(exc)) from None
        except Exception as exc:  # noqa: BLE001 - every failure here is the user's configuration
            raise StorageError(f"{url}: {explain(exc, bucket)}") from None
        finally:
            fs.retries = retries
        return cls(url, bucket, root, fs, workdir_for(url))

    @property
    def catalog(self) -> BucketLedger:
        """The bucket's compacted ledger and shard index (engine.s3_catalog)."""
        return BucketLedger(self)

    def for_node(self) -> S3Store:
        """This store as a Ray worker on this node uses it: the same bucket, this node's own working folder."""
        local = workdir_for(self.url, node=True)
        return dataclasses.replace(self, local=local, lease=None, evict=local != self.local)

    def take_lease(self) -> None:
        """Become the one writer of this URL (engine.bucket_lease): before anything is pulled or written."""
        from engine.bucket_lease import BucketLease

        try:
            self.lease = BucketLease(self.fs, self.bucket, self.root, self.url).acquire()
        except OSError as exc:
            raise self._fail("taking the write lease of", exc) from None

    def give_back_lease(self) -> None:
        if self.lease is not None:
            self.lease.release()
            self.lease = None

    def _remote(self, rel: str) -> str:
        return f"{self.root}/{rel}"

    def _writable(self) -> None:
        if self.lease is not None:
            self.lease.check()

    def _fail(self, what: str, exc: BaseException) -> OSError:
        """An upload/download failure is the environment's (EIO: never a clip's verdict; a rerun retries)."""
        return OSError(errno.EIO, f"{what} {self.url}: {explain(exc, self.bucket)}")

    def listing(self, sub: str) -> dict[str, dict[str, Any]]:
        """rel path -> object info, for every object under ``sub`` (fresh, not s3fs's cached listing)."""
        path = self._remote(sub)
        self.fs.invalidate_cache(path)
        try:
            found = self.fs.find(path, detail=True)
        except FileNotFoundError:
            return {}
        except Exception as exc:  # noqa: BLE001
            raise self._fail("listing", exc) from None
        return {p[len(self.root) + 1:]: info for p, info in found.items() if info.get("type") != "directory"}

    # -- transfers -------------------------------------------------------------------------------------------------
    def put(self, paths: Iterable[Path]) -> None:
        """Upload local files of the working folder to the same relative keys (each object whole or absent)."""
        paths = [p for p in paths if p.is_file()]
        if not paths:
            return
        self._writable()
        rels = [p.relative_to(self.local).as_posix() for p in paths]
        try:
            self.fs.put([str(p) for p in paths], [self._remote(r) for r in rels])
        except Exception as exc:  # noqa: BLE001
            raise self._fail(f"upload of {rels[0]}{' …' if len(rels) > 1 else ''} to", exc) from None

    def get(self, rels: list[str]) -> None:
        """Download objects into the working folder, each through .tmp and a rename (never a partial file)."""
        if not rels:
            return
        (self.local / ".tmp").mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix="pull-", dir=self.local / ".tmp"))
        tmp = [staging / f"{i:06d}" for i in range(len(rels))]
        try:
            self.fs.get([self._remote(r) for r in rels], [str(t) for t in tmp])
        except Exception as exc:  # noqa: BLE001
            raise self._fail("download from", exc) from None
        for rel, path in zip(rels, tmp):
            target = self.local / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(path, target)
        shutil.rmtree(staging, ignore_errors=True)

    def _mirror(self, sub: str, drop_extra: bool) -> dict[str, dict[str, Any]]:
        remote = self.listing(sub)
        self.get([rel for rel, info in sorted(remote.items()) if not _same(self.local / rel, info)])
        if drop_extra:
            for path in _files(self.local / sub):
                if path.relative_to(self.local).as_posix() not in remote:
                    path.unlink()
        return remote

    def _mirror_file(self, name: str) -> None:
        info = self.listing(name).get(name)
        if info is None:
            (self.local / name).unlink(missing_ok=True)  # not (or no longer) in the store
        elif not _same(self.local / name, info):
            self.get([name])

    def pull(self, local: Path) -> None:
        """Bring the working folder in line with the store (run under the run's lock, before run.json is read)."""
        assert local == self.local, (local, self.local)
        for stale in (local / ".tmp").glob("pull-*"):  # downloads of a killed run
            shutil.rmtree(stale, ignore_errors=True)
        for name in ("run.json", "config.yaml"):
            self._mirror_file(name)
        self.catalog.pull(drop_extra=True)  # a ledger entry never uploaded: that clip is redone
        self._mirror("cache/samples", drop_extra=False)  # staged on another machine: verified by the ledger
        self._mirror("previews", drop_extra=False)
        shards = self.shard_sizes()
        for path in (local / "shards").glob("*.tar"):  # published here but never uploaded: repacked
            if shards.get(path.name) != path.stat().st_size:
                path.unlink()

    def checkpoint(self) -> None:
        """Every REMIND_CURATE_LEDGER_FOLD_S (120 s) of a run, the clip objects so far are folded into the ledger."""
        self.folded_at = self.catalog.fold_if_due(self.folded_at)

    def refresh(self) -> None:
        """After the workers ran: ledger entries and staged samples that workers on other nodes uploaded come down,
        so the driver packs and reports them (on one machine everything is already here: nothing moves); then the
        clip objects are folded into the bucket's compacted ledger (engine.s3_catalog)."""
        self.catalog.compact(*self.catalog.pull(drop_extra=False))
        self._mirror("cache/samples", drop_extra=False)
        self._mirror("previews", drop_extra=False)

    def push_identity(self, run: Any) -> None:
        self.put([run.out / "run.json", run.out / "config.yaml"])

    # -- per clip, per shard, at the end ---------------------------------------------------------------------------
    def commit_clip(self, run: Any, clip_id: str, window_ids: list[str], keys: list[str]) -> None:
        """A committed clip: its window cache, staged samples and thumbnails, then its ledger entry LAST."""
        paths: list[Path] = []
        for window_id in window_ids:
            paths += _files(run.windows / window_id)
            paths.append(run.previews / "vlm" / f"{window_id}.jpg")
        for key in keys:
            paths += _files(run.samples / key)
        self.put(paths)
        self.put([run.clips / f"{clip_id}.json"])
        if self.evict:  # the bucket holds them now; the driver packs from there (refresh)
            for path in paths + [run.clips / f"{clip_id}.json"]:
                path.unlink(missing_ok=True)

    def publish_shard(self, path: Path, keys: list[str]) -> None:
        """One atomic upload of a complete local shard (PUT, or a multipart upload visible once completed)."""
        part, target = os.environ.get(PART_BYTES_ENV), self._remote(f"shards/{path.name}")
        self._writable()
        try:
            self.fs.put_file(str(path), target, chunksize=int(part) if part else None)
            tag = self._tag(self.fs.info(target))
        except Exception as exc:  # noqa: BLE001 - s3fs aborts an unfinished multipart upload itself
            raise self._fail(f"upload of shards/{path.name} to", exc) from None
        self.catalog.remember(path.name, tag, keys, upload=True)

    @staticmethod
    def _tag(info: dict[str, Any]) -> str:
        """What identifies one shard object: its size and ETag."""
        return f"{int(info['size'])}:{str(info.get('ETag') or info.get('etag') or '').strip(chr(34))}"

    def _shard_objects(self) -> dict[str, dict[str, Any]]:
        return {rel.rsplit("/", 1)[1]: info for rel, info in sorted(self.listing("shards").items())
                if _SHARD.match(rel.rsplit("/", 1)[1])}

    def shard_sizes(self) -> dict[str, int]:
        """name -> bytes of every published shard object."""
        return {name: int(info["size"]) for name, info in self._shard_objects().items()}

    def published_keys(self, members: Callable[[Any], dict[str, list[str]]] = shard_members) -> dict[str, str]:
        """key -> shard name over every published shard object; ``members(file)`` reads a tar's headers (used
        only for a shard this working folder has no index of: a run resumed on another machine)."""
        catalog, objects = self.catalog, self._shard_objects()
        tags = {name: self._tag(info) for name, info in objects.items()}
        catalog.fetch_indexes([name for name, tag in tags.items() if catalog.known_keys(name, tag) is None])
        index: dict[str, str] = {}
        for name, tag in tags.items():
            keys = catalog.known_keys(name, tag)
            if keys is None:  # a shard published before shard indexes went to the bucket
                try:
                    with self.fs.open(self._remote(f"shards/{name}"), "rb", block_size=1 << 16) as handle:
                        keys = list(members(handle))
                except Exception as exc:  # noqa: BLE001
                    raise self._fail(f"reading shards/{name} of", exc) from None
                catalog.remember(name, tag, keys, upload=False)
            index.update({key: name for key in keys})
        return index

    def local_shard(self, run: Any, name: str) -> Path:
        """A published shard as a local file (downloaded when this working folder lacks it)."""
        path = run.shards / name
        if not path.is_file():
            self.get([f"shards/{name}"])
        return path

    def drop_samples(self, keys: Iterable[str]) -> None:
        """Remove the store's staged copies of samples that are now in a published shard."""
        wanted = set(keys)
        stale = [self._remote(rel) for rel in self.listing("cache/samples") if rel.split("/")[2] in wanted]
        if stale:
            try:
                self.fs.rm(stale)
            except Exception as exc:  # noqa: BLE001
                raise self._fail("removing staged samples from", exc) from None

    def push_outputs(self, run: Any) -> None:
        """The run's summary, the report last (its presence means the run finished)."""
        self.put(p for p in run.previews.glob("*") if p.is_file())
        self.put([run.out / "manifest.parquet", run.out / "metrics.json", run.out / "README.md", run.out / "info.json"])
        self.put([run.out / "report.md"])


def readable_copy(source: str) -> str:
    """``regenerate --from s3://...``: the finished run's identity, manifest and window cache in its local working
    folder (pulled under that folder's lock)."""
    remote = S3Store.connect(source, write=False)
    from engine.bucket_lease import BucketLease

    writer = BucketLease(remote.fs, remote.bucket, remote.root, remote.url).live_holder()
    if writer is not None:  # an ingest still writing (or resuming) it: its cache and manifest are not final
        raise StorageError(f"{source} is being written by another remind-curate process ({writer})")
    remote.local.mkdir(parents=True, exist_ok=True)
    with open(remote.local / ".lock", "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise StorageError(f"{source} is being written by another remind-curate process on this machine"
                               ) from None
        for name in ("run.json", "config.yaml", "manifest.parquet"):
            remote._mirror_file(name)
        remote._mirror("cache/windows", drop_extra=True)
    return str(remote.local)
