"""Ingest throughput: seconds per stage per clip, peak memory, and the ratio to the ffmpeg CLI floor.

    .venv/bin/python benchmarks/ingest.py --clips 10                 # local 720p H.264 sources (default)
    .venv/bin/python benchmarks/ingest.py --source synthetic --clips 100

The floor is the ffmpeg CLI doing only decode -> fps -> scale/crop -> one encode per output window, measured in
the same run on the same inputs (for the synthetic source, the inputs are the clean clips the ingest wrote).
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from remind_curate import env  # noqa: E402

env.configure()

from benchmarks.common import PeakRSS, ffmpeg_floor  # noqa: E402
from schemas.config import load_config  # noqa: E402
from tests.media import scene_frames, write_video  # noqa: E402


def make_sources(directory: Path, count: int) -> list[Path]:
    """720p H.264 clips of 12 s (two 81-frame windows each at 16 fps), with sustained localised motion."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for index in range(count):
        frames = scene_frames(300, height=720, width=1280, seed=100 + index, shift=index % 3)
        paths.append(write_video(directory / f"src-{index:04d}.mp4", frames, fps=25))
    return paths


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--source", choices=["local", "synthetic"], default="local")
    parser.add_argument("--clips", type=int, default=10)
    parser.add_argument("--config", help="YAML overrides (default: the offline profile)")
    parser.add_argument("--workdir", help="keep outputs here (default: a temp dir, removed)")
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args()

    from flows.ingest import ingest

    work = Path(args.workdir or tempfile.mkdtemp(prefix="remind-bench-"))
    config = load_config(args.config)
    if args.source == "local":
        sources = make_sources(work / "sources", args.clips)
        spec = f"local:{work / 'sources'}"
    else:
        spec = f"synthetic:{args.clips}"
    out = work / "out"
    shutil.rmtree(out, ignore_errors=True)
    with PeakRSS() as rss:
        started = time.perf_counter()
        summary = ingest(source=spec, out=str(out), config_path=args.config)
        ingest_s = time.perf_counter() - started
    flow_s = summary["wall_s"]
    started = time.perf_counter()  # the same command again: everything is finished, nothing may be redone
    rerun = ingest(source=spec, out=str(out), config_path=args.config)
    rerun_s = time.perf_counter() - started
    windows = sum(summary["status"].values())
    if args.source == "synthetic":  # the floor re-encodes the same clean outputs
        sources = sorted((out / "cache" / "windows").glob("*/clean.mp4"))
    floor_s, floor_rss = ffmpeg_floor(sources, work / "floor", config.normalise.windows_per_video
                                      if args.source == "local" else 1, config.encode.crf, config.encode.preset)
    figures = {
        "source": args.source, "clips": args.clips, "windows": windows,
        "accepted": summary["status"].get("accepted", 0),
        "ingest_wall_s": round(ingest_s, 2), "flow_wall_s": flow_s,
        "prefect_startup_and_import_s": round(ingest_s - flow_s, 2),
        "clips_per_s": round(args.clips / flow_s, 3),
        "stage_seconds_per_clip": summary["stage_seconds_per_clip"],
        "peak_rss_mib": round(rss.mib, 1),
        "ffmpeg_floor_s": round(floor_s, 2), "ffmpeg_floor_peak_rss_mib": round(floor_rss, 1),
        "ratio_to_floor": round(flow_s / floor_s, 2),
        "rerun_wall_s": round(rerun_s, 2), "rerun_fraction_of_first": round(rerun_s / ingest_s, 3),
        "rerun_clips_reprocessed": rerun["clips_processed"],
    }
    print(f"\ningest of {args.clips} {args.source} clips ({windows} windows, {figures['accepted']} accepted)")
    print(f"  flow wall time        {flow_s:8.2f} s   ({figures['clips_per_s']} clips/s; Prefect start-up and "
          f"imports add {figures['prefect_startup_and_import_s']} s)")
    for stage, seconds in figures["stage_seconds_per_clip"].items():
        print(f"    {stage:20s} {seconds:8.3f} s/clip")
    print(f"  peak RSS              {figures['peak_rss_mib']:8.1f} MiB")
    print(f"  ffmpeg CLI floor      {floor_s:8.2f} s   (peak {floor_rss:.1f} MiB)")
    print(f"  ratio to the floor    {figures['ratio_to_floor']:8.2f} x")
    print(f"  rerun of the finished ingest: {rerun_s:.2f} s = {figures['rerun_fraction_of_first']:.1%} of the first "
          f"run, {rerun['clips_processed']} clips reprocessed")
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=1))
    if not args.workdir:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
