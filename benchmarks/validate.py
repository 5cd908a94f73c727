"""Validate throughput: seconds per GiB of shards, good and hostile, for several member sizes, beside a plain tar
read of the same shards (tarfile, every member read) measured in the same run.

    .venv/bin/python benchmarks/validate.py                  # 96 MiB per shard, videos not decoded
    .venv/bin/python benchmarks/validate.py --mib 256 --video
    .venv/bin/python benchmarks/validate.py --only tiny,video  # the per-sample and the video-heavy rows

Shards (each about --mib MiB): "good": copies of the frozen 1.0.0 samples (depth left out) re-signed, each with a
newer-minor ``pad.npy`` of the member size (valid samples); "json-quotes": samples of one graph.json, a string of
escaped quotes of the member size; "json-dense": one graph.json, a list of zeros of the member size. The validator's
time per GiB should not grow with the member size (small members cost a little more per byte: per-sample work).
"tiny": --tiny samples of one 1-byte member each (each one invalid: three required entries missing), where the
per-sample work is all there is: read as samples/s. "video crfN": --video-samples valid samples whose mp4 is 81
frames of real footage (tests/data/real/vtest-11s.mp4) at 480x832, H.264 at that crf, each made distinct (a
trailing free box: the probe cache is by digest), validated with every video decoded. "old depth scan" times the
regular expression the validator used before (schemas/untrusted.py at 1.1.0) on one escaped-quote string:
quadratic, so only small sizes.
"""
from __future__ import annotations

import argparse
import gzip
import json
import re
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from schemas.migrate import migrate_members  # noqa: E402
from schemas.sample_io import npy_bytes, with_checksums  # noqa: E402
from schemas.shard_writer import ShardWriter  # noqa: E402
from schemas.shards import raw_samples  # noqa: E402
from tasks.shards.validate import validate_path  # noqa: E402
from tasks.video_io import encode_h264  # noqa: E402

FROZEN = Path(__file__).resolve().parents[1] / "tests" / "data" / "frozen" / "v1.0.0" / "shard-000000.tar.gz"
FOOTAGE = FROZEN.parents[2] / "real" / "vtest-11s.mp4"
SIZES = (64 << 10, 1 << 20, 8 << 20)


def _frozen_samples(tmp: Path) -> list[tuple[str, dict[str, bytes]]]:
    path = tmp / "frozen.tar"
    path.write_bytes(gzip.decompress(FROZEN.read_bytes()))
    out = []
    for raw in raw_samples(path):
        members = {k: v for k, v in raw.items() if not k.startswith("__") and k != "depth.npy"}
        meta = json.loads(members["meta.json"])
        meta["geometry"]["has_depth"] = False
        members["meta.json"] = json.dumps(meta).encode()
        out.append((str(raw["__key__"]), migrate_members(members, str(raw["__key__"]), decode_video=False)[0]))
    return out


def _renamed(members: dict[str, bytes], key: str) -> dict[str, bytes]:
    meta = json.loads(members["meta.json"])
    meta["key"] = key
    return {**members, "meta.json": json.dumps(meta).encode()}


def _member(kind: str, size: int) -> tuple[str, bytes]:
    if kind == "good":
        return "pad.npy", npy_bytes(np.zeros(max(size - 128, 0), np.uint8))
    if kind == "json-quotes":
        return "graph.json", b'{"a":"' + b'\\"' * ((size - 8) // 2) + b'"}'
    return "graph.json", b"[" + b"0," * ((size - 3) // 2) + b"0]"


def _shard(path: Path, samples: list, kind: str, size: int, mib: int) -> Path:
    ext, data = _member(kind, size)
    with ShardWriter(path) as writer:
        i = 0
        while writer.bytes < mib << 20:
            key, members = samples[i % len(samples)]
            key = f"{key}-{i:06d}"
            members = _renamed(members, key) if kind == "good" else {}
            writer.add(key, list(with_checksums({**members, ext: data}).items()))
            i += 1
        writer.publish()
    return path


def _tar_read(path: Path) -> float:
    started = time.perf_counter()
    with tarfile.open(path) as tar:
        for info in tar:
            handle = tar.extractfile(info)
            if handle is not None:
                while handle.read(1 << 20):
                    pass
    return time.perf_counter() - started


def _tiny_shard(path: Path, count: int) -> Path:
    with open(path, "wb") as handle:
        for i in range(count):
            info = tarfile.TarInfo(f"t{i:07d}.txt")
            info.size = 1
            handle.write(info.tobuf(format=tarfile.USTAR_FORMAT) + b"x" + b"\0" * 511)
        handle.write(b"\0" * 10240)
    return path


def _footage() -> np.ndarray:
    import av

    frames = []
    with av.open(str(FOOTAGE)) as container:
        for frame in container.decode(video=0):
            frames.append(frame.reformat(width=832, height=480).to_ndarray(format="rgb24"))
            if len(frames) == 81:
                return np.stack(frames)
    raise ValueError(f"{FOOTAGE} has fewer than 81 frames")


def _video_shard(path: Path, samples: list, mp4: bytes, count: int) -> Path:
    with ShardWriter(path) as writer:
        for i in range(count):
            key, members = samples[i % len(samples)]
            key = f"{key}-{i:06d}"
            unique = mp4 + (16).to_bytes(4, "big") + b"free" + i.to_bytes(8, "big")
            writer.add(key, list(with_checksums({**_renamed(members, key), "mp4": unique}).items()))
        writer.publish()
    return path


def _row(name: str, member: str, path: Path, decode_video: bool, per_sample: bool = False) -> None:
    gib = path.stat().st_size / 2**30
    baseline = _tar_read(path)
    started = time.perf_counter()
    report = validate_path(path, decode_video=decode_video)
    seconds = time.perf_counter() - started
    rate = f"  {report.samples / seconds:,.0f} samples/s" if per_sample else ""
    print(f"{name:<12} {member:>8} {path.stat().st_size / 2**20:>6.0f} {seconds / gib:>15.1f} {baseline / gib:>15.1f}"
          f"  {len(report.problems)} in {report.samples} samples{rate}")
    path.unlink()


def _old_depth_scan(size: int) -> float:
    data = b'"' + b'\\"' * (size // 2)  # unterminated: the regex retries from every quote
    started = time.perf_counter()
    re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL).sub(b'""', data)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mib", type=int, default=96, help="size of each shard")
    parser.add_argument("--video", action="store_true", help="decode the videos too (time per sample, not byte)")
    parser.add_argument("--tiny", type=int, default=100_000, help="samples of the tiny-sample shard")
    parser.add_argument("--video-samples", type=int, default=24, help="samples of each video-heavy shard")
    parser.add_argument("--only", default="good,json-quotes,json-dense,tiny,video,old",
                        help="comma-separated rows to run")
    args = parser.parse_args()
    only = set(args.only.split(","))
    with tempfile.TemporaryDirectory(prefix="bench-validate-") as folder:
        tmp = Path(folder)
        samples = _frozen_samples(tmp)
        print(f"{'shard':<12} {'member':>8} {'MiB':>6} {'validate s/GiB':>15} {'tar read s/GiB':>15}  problems")
        for kind in ("good", "json-quotes", "json-dense"):
            for size in SIZES if kind in only else ():
                path = _shard(tmp / f"{kind}-{size}.tar", samples, kind, size, args.mib)
                _row(kind, f"{size >> 10}Ki", path, args.video)
        if "tiny" in only:
            _row("tiny", "1B", _tiny_shard(tmp / "tiny.tar", args.tiny), False, per_sample=True)
        if "video" in only:
            footage = _footage()
            for crf in (23, 10):
                mp4 = encode_h264(footage, crf=crf, preset="veryfast")
                path = _video_shard(tmp / f"video-{crf}.tar", samples, mp4, args.video_samples)
                _row(f"video crf{crf}", f"{len(mp4) >> 10}Ki", path, True, per_sample=True)
        for size in (8 << 10, 16 << 10, 32 << 10) if "old" in only else ():
            seconds = _old_depth_scan(size)
            print(f"old depth scan, one {size >> 10} KiB string of escaped quotes: {seconds:.2f} s "
                  f"({seconds / (size / 2**30):,.0f} s/GiB)")


if __name__ == "__main__":
    main()
