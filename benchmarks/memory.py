"""Peak memory of the whole process tree at 100 and at 1000 sources: flat (ratio <= 1.1) and <= 1 GiB (issue 14).

    .venv/bin/python benchmarks/memory.py                    # 100 and 1000 sources
    .venv/bin/python benchmarks/memory.py --clips 20 200     # a quicker look

Each count is the user's command (``python -m remind_curate.cli ingest``, as in benchmarks/ingest.py) on its own
folder of distinct local 720p H.264 sources, under benchmarks/configs/memory.yaml (every stage kind of the default
ingest, made cheap enough that 1000 sources take about 15 minutes on 2 cores; the file says what differs). Peak RSS
is sampled every 50 ms over the command and all its children (its Prefect server included). What would grow with
the number of sources (rows, ledgers, metrics, the manifest) grows here exactly as in a default run; the frames in
flight are the default's 480x832. benchmarks/ingest.py prints the default configuration's peak at 24 sources.

The sources are one 81-frame clip written once, each copy made distinct (its content hash, hence its clip id) by a
trailing MP4 ``free`` box carrying its index: decoders skip it, so every source decodes to the same frames.
"""
from __future__ import annotations

import argparse
import json
import struct
import sys
import shutil
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.ingest import job_config, run_job  # noqa: E402

CONFIG = ROOT / "benchmarks" / "configs" / "memory.yaml"


def make_sources(directory: Path, count: int, template: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    data = template.read_bytes()
    for index in range(count):
        path = directory / f"src-{index:05d}.mp4"
        if not path.exists():
            payload = f"remind-curate memory benchmark source {index}".encode()
            path.write_bytes(data + struct.pack(">I", 8 + len(payload)) + b"free" + payload)
    return directory


def write_template(path: Path) -> Path:
    from tests.media import scene_frames, write_video

    if not path.exists():
        write_video(path, scene_frames(130, height=720, width=1280, seed=7, shift=1), fps=25)  # 5.2 s: 81 frames
    return path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clips", type=int, nargs="+", default=[100, 1000])
    parser.add_argument("--workdir", help="keep sources and outputs here (default: a temp dir, removed)")
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args()

    work = Path(args.workdir or tempfile.mkdtemp(prefix="remind-memory-"))
    work.mkdir(parents=True, exist_ok=True)
    template = write_template(work / "template.mp4")
    config = job_config("memory", work, 23, "ultrafast", str(CONFIG))  # validated: a misconfiguration fails here
    results = []
    for count in args.clips:
        sources = make_sources(work / f"sources-{count}", count, template)
        result = run_job(f"{count}", sources, work / f"out-{count}", config)
        results.append({"clips": count, **result})
        print(f"  {count:5d} sources: peak RSS {result['peak_rss_mib']:7.1f} MiB   wall {result['wall_s']:.1f} s   "
              f"CPU {result['cpu_s']:.1f} s   status {result['status']}", flush=True)
    peaks = [r["peak_rss_mib"] for r in results]
    ratio = peaks[-1] / peaks[0]
    print(f"\npeak RSS of the process tree: {' -> '.join(f'{p:.0f}' for p in peaks)} MiB over "
          f"{' -> '.join(str(c) for c in args.clips)} sources; ratio {ratio:.3f} (target <= 1.1); "
          f"largest {max(peaks):.0f} MiB (target <= 1024)")
    if args.json:
        Path(args.json).write_text(json.dumps({"config": CONFIG.read_text(), "runs": results,
                                               "ratio": round(ratio, 3), "peak_mib": max(peaks)}, indent=1))
    if not args.workdir:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
