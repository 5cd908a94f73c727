"""The ledger, manifest and resume half of benchmarks/cluster.py: write a 10,000-source run's ledger entries and
manifest (time and bytes at 1k, 2k, 5k, 10k), then time what a resumed run does first (engine.run_setup.open_output
and engine.ledger.split_finished) on a local folder and on s3:// (moto's server on 127.0.0.1, started here), from
the same machine and from another one (an empty working folder).
"""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


SIZES = (1000, 2000, 5000, 10_000)
PER_SHARD = 1000


def _entry(run, index: int):
    """A source, its ledger entry (two rows: one accepted key, one rejected window) and its staged members."""
    from engine.run import sha256_bytes
    from schemas.manifest import ManifestRow
    from tasks.records import SourceItem

    item = SourceItem(f"synthetic-{index:06d}", "synthetic", f"synthetic:{index}")
    key = f"{item.clip_id}-w000"
    members = {"checksums.json": b"{}", "mp4": f"mp4 {index}".encode(), "meta.json": b'{"clip":1}'}
    common = dict(run_id=run.run_id, clip_id=item.clip_id, source=item.source, uri=item.uri,
                  config_hash=run.clip_hash, tags=["pan", "outdoor"], geometry_backend="classical", seconds=1.5)
    rows = [ManifestRow(window=0, status="accepted", key=key, caption="a slow pan across a street at dusk",
                        scores={"aesthetic": 0.61, "motion": 0.23, "vlm": 0.9}, source_start_s=0.0,
                        source_end_s=5.4, vlm_decision="keep", **common),
            ManifestRow(window=1, status="rejected", reason="static_scene", scores={"motion": 0.01},
                        source_start_s=5.4, source_end_s=10.8, **common)]
    checksums = {name: sha256_bytes(data) for name, data in members.items()}
    entry = {"clip_id": item.clip_id, "clip_hash": run.clip_hash, "rows": [r.model_dump(mode="json") for r in rows],
             "timings": {"decode": 1.9, "cuts": 0.4, "motion": 2.6, "cameras": 1.2, "write": 6.0},
             "checksums": {key: checksums["mp4"]}, "member_checksums": {key: checksums}}
    return item, entry, rows, key, members


def _write_run(out: Path) -> tuple[list, list[str]]:
    """A finished 10k-source run in ``out``: ledger entries and the manifest timed at each of SIZES; the keys
    packed into shards. Prints the growth table."""
    from engine.run import atomic_write_json
    from engine.run_setup import open_output
    from schemas.config import Config
    from schemas.shard_writer import ShardWriter
    from tasks.publish.manifest import write_manifest

    items, rows, keys, samples = [], [], [], []
    print("ledger and manifest writes (ledger: cumulative; manifest: rewritten whole at each size):")
    print(f"  {'entries':>7}  {'ledger s':>8}  {'us/entry':>8}  {'ledger MiB':>10}  {'manifest s':>10}  "
          f"{'manifest MiB':>12}  {'us/row':>6}")
    with open_output(str(out), Config()) as run:
        spent, size, done = 0.0, 0, 0
        for target in SIZES:
            batch = [_entry(run, i) for i in range(done, target)]
            started = time.perf_counter()
            for item, entry, _, _, _ in batch:
                atomic_write_json(run.clips / f"{item.clip_id}.json", entry)
            chunk = time.perf_counter() - started
            spent += chunk
            for item, _, item_rows, key, members in batch:
                items.append(item)
                rows += item_rows
                keys.append(key)
                samples.append((key, members))
                size += (run.clips / f"{item.clip_id}.json").stat().st_size
            shard_of = {key: f"shard-{i // PER_SHARD:06d}.tar" for i, key in enumerate(keys)}
            started = time.perf_counter()
            write_manifest(run, rows, shard_of)
            manifest_s = time.perf_counter() - started
            manifest = (run.out / "manifest.parquet").stat().st_size
            print(f"  {target:>7}  {spent:8.2f}  {chunk / (target - done) * 1e6:8.0f}  {size / 2**20:10.2f}  "
                  f"{manifest_s:10.3f}  {manifest / 2**20:12.2f}  {manifest_s / len(rows) * 1e6:6.1f}")
            done = target
        for start in range(0, len(samples), PER_SHARD):
            with ShardWriter(run.shards / f"shard-{start // PER_SHARD:06d}.tar", run.tmp) as writer:
                for key, members in samples[start:start + PER_SHARD]:
                    writer.add(key, members.items())
                writer.publish()
    return items, keys


class _Phases:
    """Seconds (and calls, objects) spent in some methods of a class while in use: where a resume's time goes."""

    def __init__(self, cls: type, names: tuple[str, ...]) -> None:
        self.cls, self.names, self.seconds, self.calls, self.objects = cls, names, {}, {}, {}

    def __enter__(self) -> _Phases:
        self.saved = {name: getattr(self.cls, name) for name in self.names}
        for name, method in self.saved.items():
            def timed(*args, _name=name, _method=method, **kwargs):
                started = time.perf_counter()
                try:
                    return _method(*args, **kwargs)
                finally:
                    self.seconds[_name] = self.seconds.get(_name, 0.0) + time.perf_counter() - started
                    self.calls[_name] = self.calls.get(_name, 0) + 1
                    if len(args) > 1 and isinstance(args[1], list):
                        self.objects[_name] = self.objects.get(_name, 0) + len(args[1])
            setattr(self.cls, name, timed)
        return self

    def __exit__(self, *_: object) -> None:
        for name, method in self.saved.items():
            setattr(self.cls, name, method)


def _resume(out: str, items: list) -> tuple[float, int, str]:
    """What a resumed run does first: open OUT (lock, lease, pull for s3://) and split the finished work off.
    Returns its seconds, the sources found finished, and where the time went."""
    from engine import ledger
    from engine.run_setup import open_output
    from engine.store_s3 import S3Store
    from schemas.config import Config

    with _Phases(S3Store, ("listing", "get", "published_keys")) as store, \
            _Phases(ledger, ("split_finished",)) as split_time:
        started = time.perf_counter()
        with open_output(out, Config()) as run:
            split = ledger.split_finished(items, run)
            seconds = time.perf_counter() - started
    if split.todo or split.redo_reasons:
        raise RuntimeError(f"resume of {out}: {len(split.todo)} to redo, e.g. {list(split.redo_reasons.items())[:2]}")
    s, n = store.seconds, store.calls
    check = split_time.seconds.get("split_finished", 0.0) - s.get("published_keys", 0.0)
    where = (f"listings {s.get('listing', 0.0):.2f} s ({n.get('listing', 0)} calls), downloads "
             f"{s.get('get', 0.0):.2f} s ({store.objects.get('get', 0)} objects), shard index "
             f"{s.get('published_keys', 0.0):.2f} s, ledger checks {check:.2f} s") if "s3://" in out else \
        f"ledger checks and shard headers (split_finished) {split_time.seconds.get('split_finished', 0.0):.2f} s"
    return seconds, len(split.done_rows), where


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _moto(root: Path) -> subprocess.Popen:
    """moto's S3 server on 127.0.0.1 in its own process; the AWS environment of this process points at it."""
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url, deadline = f"http://127.0.0.1:{port}", time.time() + 30
    while True:
        try:
            urllib.request.urlopen(f"{url}/moto-api/", timeout=1)
            break
        except OSError:
            if time.time() > deadline or proc.poll() is not None:
                proc.kill()
                raise RuntimeError("moto server did not start") from None
            time.sleep(0.1)
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL_S3", "REMIND_CURATE_S3_PART_BYTES"):
        os.environ.pop(name, None)
    os.environ.update(AWS_ENDPOINT_URL=url, AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench-secret",
                      AWS_DEFAULT_REGION="us-east-1", AWS_SHARED_CREDENTIALS_FILE=str(root / "no-credentials"),
                      AWS_CONFIG_FILE=str(root / "no-config"))
    return proc


def _s3_run(local: Path, url: str, items: list, keys: list[str]) -> float:
    """The local run's ledger and shards into ``url`` as a run puts them (S3Store: entries under cache/clips/, folded
    into the compacted ledger before packing, each shard published with one upload and its index). Returns the
    upload's seconds."""
    from engine.run_setup import open_output
    from schemas.config import Config

    started = time.perf_counter()
    with open_output(url, Config()) as run:
        shutil.copytree(local / "cache" / "clips", run.clips, dirs_exist_ok=True)
        run.store.put(sorted(run.clips.glob("*.json")))
        run.store.refresh()  # as a run does before packing: the clip objects are folded (engine.s3_catalog)
        for shard in sorted((local / "shards").glob("shard-*.tar")):
            shutil.copy2(shard, run.shards / shard.name)
            number = int(shard.stem.split("-")[1])
            run.store.publish_shard(run.shards / shard.name, keys[number * PER_SHARD:(number + 1) * PER_SHARD])
        shutil.copy2(local / "manifest.parquet", run.out / "manifest.parquet")
    return time.perf_counter() - started


def listing(root: Path, s3: bool) -> None:
    out = root / "resume"
    items, keys = _write_run(out)
    seconds, done, where = _resume(str(out), items)
    print(f"resume, local folder: {done} finished sources listed in {seconds:.2f} s "
          f"(open_output + split_finished; of which {where}; {len(keys) // PER_SHARD} shards' headers read)")
    if not s3:
        return
    proc = _moto(root)
    try:
        import s3fs

        s3fs.S3FileSystem(skip_instance_cache=True).mkdir("remind-bench")
        url = "s3://remind-bench/run"
        os.environ["REMIND_CURATE_WORKDIR"] = str(root / "work-a")
        upload = _s3_run(out, url, items, keys)
        print(f"S3 (moto on 127.0.0.1): {len(items)} ledger entries and {len(keys) // PER_SHARD} shards put in "
              f"{upload:.1f} s")
        seconds, done, where = _resume(url, items)
        print(f"resume, s3:// from the same machine (working folder present): {done} finished sources listed in "
              f"{seconds:.2f} s; of which {where}")
        os.environ["REMIND_CURATE_WORKDIR"] = str(root / "work-b")
        seconds, done, where = _resume(url, items)
        print(f"resume, s3:// from another machine (empty working folder): {done} finished sources listed in "
              f"{seconds:.2f} s; of which {where}")
    finally:
        proc.terminate()
        proc.wait(timeout=10)


if __name__ == "__main__":
    import argparse
    import tempfile

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--no-s3", action="store_true", help="resume from a local folder only")
    where = Path(tempfile.mkdtemp(prefix="rc-resume-", dir="/tmp"))
    try:
        listing(where, not parser.parse_args().no_s3)
    finally:
        shutil.rmtree(where, ignore_errors=True)
