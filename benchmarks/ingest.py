"""Ingest against the ffmpeg floor, in the same run, on real 720p H.264 sources (issue 14's targets).

    .venv/bin/python benchmarks/ingest.py                        # 24 sources, --job both, preset medium
    .venv/bin/python benchmarks/ingest.py --job same --clips 8 --preset veryfast

The floor is the ffmpeg CLI doing only decode -> fps 16 -> scale/crop 832x480 -> one libx264 encode per source,
split into 81-frame clips, one source after another. Both sides get the same codec, crf and preset, the same
forced IDR frames (the pipeline's chunk keyframes) and the same windows per source.

- ``--job same``: the floor's job through the pipeline: benchmarks/configs/same_job.yaml turns off the scene-cut
  detector, the motion stage, geometry and the degraded clip (augment mixture none only).
- ``--job full``: the default ingest (clean + degraded encode, cuts, motion, geometry, graph, pack).

Each job is the user's command, ``python -m remind_curate.cli ingest --source local:DIR --out OUT --config C``, run
as a child process: its wall time includes interpreter start, imports and Prefect's start-up. Peak RSS is the
whole process tree's (the command, its Prefect server, any children). The floor runs before and after the jobs;
the ratios use the mean of the two (the spread says how much the machine's load moved in between).
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.common import PeakRSS, ffmpeg_floor  # noqa: E402
from schemas.config import Config, load_config  # noqa: E402

SAME_JOB = ROOT / "benchmarks" / "configs" / "same_job.yaml"
KEYFRAMES = (9, 21, 33, 45, 57, 69)  # tasks.augment.clean_view.CHUNK_KEYFRAMES (not imported: no torch here)


def make_sources(directory: Path, count: int) -> list[Path]:
    """720p H.264 clips of 12 s (two 81-frame windows each at 16 fps), with sustained localised motion.
    Kept between runs of the same ``--workdir``: only missing ones are written."""
    from tests.media import scene_frames, write_video

    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for index in range(count):
        path = directory / f"src-{index:04d}.mp4"
        if not path.exists():
            frames = scene_frames(300, height=720, width=1280, seed=100 + index, shift=index % 3)
            write_video(path, frames, fps=25)
        paths.append(path)
    return paths


def job_config(job: str, work: Path, crf: int, preset: str, extra: str | None) -> Path:
    """The job's config file: same_job.yaml (or nothing) + ``--config`` + the shared encoder settings."""
    data = Config.merged([SAME_JOB if job == "same" else None, extra], {"encode": {"crf": crf, "preset": preset}})
    path = work / f"config-{job}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    load_config(path)  # a misconfiguration fails here, before anything is timed
    return path


def children_cpu_s() -> float:
    """CPU seconds (user + system) of this process's finished children and theirs: the work, whatever the load."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def floor(sources: list[Path], work: Path, windows: int, crf: int, preset: str) -> tuple[float, float, float]:
    cpu = children_cpu_s()
    seconds, peak = ffmpeg_floor(sources, work / "floor", windows, crf, preset, KEYFRAMES)
    return seconds, peak, children_cpu_s() - cpu


def run_job(job: str, sources_dir: Path, out: Path, config: Path) -> dict:
    shutil.rmtree(out, ignore_errors=True)
    command = [sys.executable, "-m", "remind_curate.cli", "ingest", "--source", f"local:{sources_dir}",
               "--out", str(out), "--config", str(config)]
    cpu = children_cpu_s()
    started = time.perf_counter()
    proc = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    with PeakRSS(proc.pid) as rss:  # the command's tree, not this script
        _, stderr = proc.communicate()
    wall = time.perf_counter() - started
    cpu = children_cpu_s() - cpu
    if proc.returncode:
        raise RuntimeError(f"{' '.join(command)} failed ({proc.returncode}):\n{stderr[-3000:]}")
    metrics = json.loads((out / "metrics.json").read_text())
    stages = metrics["pipeline"]["stages"]
    return {"job": job, "wall_s": round(wall, 2), "flow_s": metrics["wall_s"],
            "startup_s": round(wall - metrics["wall_s"], 2), "cpu_s": round(cpu, 2), "peak_rss_mib": round(rss.mib, 1),
            "status": metrics["status"], "output_clips": metrics["status"].get("accepted", 0),
            "bottleneck": metrics["pipeline"].get("bottleneck"),
            "busy_fraction": {name: s["busy_fraction"] for name, s in stages.items()},
            "workers": {name: s["workers"] for name, s in stages.items()}}


def profile_stages(sources_dir: Path, out: Path, config_path: Path) -> dict:
    """CPU seconds per stage of the ingest pipeline (the flow's own stage list), each source through every active
    stage one after another in this one process, so each stage's CPU (its library threads included) is its own:
    the work, not the overlap. Pack, manifest, report and the engine's start-up are not stages; they are the rest
    of the job's CPU."""
    from engine.run import open_run
    from engine.stage import apply_stage
    from flows.curate import INGEST
    from tasks.sources.local import local_items

    def cpu() -> float:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return usage.ru_utime + usage.ru_stime

    config = load_config(config_path)
    shutil.rmtree(out, ignore_errors=True)
    run = open_run(out, config)
    stages = [cls(config, run) for cls in INGEST.active(config)]
    seconds = {stage.name: 0.0 for stage in stages}
    setup = {}
    for stage in stages:
        started = cpu()
        stage.setup()
        setup[stage.name] = round(cpu() - started, 2)
    items = local_items(str(sources_dir))
    for item in items:
        records = [item]
        for stage in stages:
            started = cpu()
            records = apply_stage(stage, records)
            seconds[stage.name] += cpu() - started
    return {"sources": len(items), "stage_cpu_s": {k: round(v, 2) for k, v in seconds.items()},
            "stage_setup_cpu_s": {k: v for k, v in setup.items() if v >= 0.01}}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clips", type=int, default=24, help="source clips (default 24: the headline figure)")
    parser.add_argument("--job", choices=["same", "full", "both"], default="both")
    parser.add_argument("--preset", default="medium", help="x264 preset of the floor AND the pipeline "
                        "(default medium: the issue's job; the offline profile's own default is veryfast)")
    parser.add_argument("--crf", type=int, default=None, help="default: the config's encode.crf (23)")
    parser.add_argument("--config", help="more YAML overrides for both jobs (encode.crf/preset are set here)")
    parser.add_argument("--workdir", help="keep sources and outputs here (default: a temp dir, removed)")
    parser.add_argument("--json", help="also write the figures to this file")
    parser.add_argument("--no-stage-cpu", action="store_true", help="skip the per-stage CPU profile of the jobs "
                        "(about one job's CPU again, after the timed runs)")
    parser.add_argument("--profile-stages", nargs=3, metavar=("SOURCES", "OUT", "CONFIG"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.profile_stages:  # the child the per-stage profile runs in (its own process: its own imports and CPU)
        print(json.dumps(profile_stages(*map(Path, args.profile_stages))))
        return 0

    work = Path(args.workdir or tempfile.mkdtemp(prefix="remind-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    base = load_config(args.config)
    crf = base.encode.crf if args.crf is None else args.crf
    windows = base.normalise.windows_per_video
    sources = make_sources(work / "sources", args.clips)
    jobs = ["same", "full"] if args.job == "both" else [args.job]
    configs = {job: job_config(job, work, crf, args.preset, args.config) for job in jobs}
    load = os.getloadavg()[0]

    floors = [floor(sources, work, windows, crf, args.preset)]
    results = [run_job(job, work / "sources", work / f"out-{job}", configs[job]) for job in jobs]
    floors.append(floor(sources, work, windows, crf, args.preset))
    if not args.no_stage_cpu:
        for r in results:
            done = subprocess.run([sys.executable, __file__, "--profile-stages", str(work / "sources"),
                                   str(work / f"profile-{r['job']}"), str(configs[r["job"]])],
                                  cwd=ROOT, capture_output=True, text=True, check=True)
            r.update(json.loads(done.stdout.splitlines()[-1]))
    floor_s = sum(f[0] for f in floors) / len(floors)
    floor_cpu = sum(f[2] for f in floors) / len(floors)
    floor_clips = len(sources) * windows
    for r in results:
        r["ratio_wall"] = round(r["wall_s"] / floor_s, 3)
        r["ratio_per_output_clip"] = round((r["wall_s"] / max(r["output_clips"], 1)) / (floor_s / floor_clips), 3)
        r["ratio_cpu"] = round(r["cpu_s"] / floor_cpu, 3)

    print(f"\n{args.clips} local 720p H.264 sources, {windows} windows each; libx264 crf {crf} preset {args.preset} "
          f"on both sides; load average at start {load:.2f}")
    print(f"  ffmpeg floor     {floor_s:7.2f} s  (before {floors[0][0]:.2f} s, after {floors[1][0]:.2f} s; "
          f"{floor_clips} clips; CPU {floor_cpu:.1f} s; peak {max(f[1] for f in floors):.0f} MiB)")
    for r in results:
        target = 1.2 if r["job"] == "same" else 2.3  # issue 25
        print(f"  job {r['job']:4s}         {r['wall_s']:7.2f} s  command wall (start-up {r['startup_s']:.2f} s, flow "
              f"{r['flow_s']:.2f} s); {r['output_clips']} output clips; status {r['status']}")
        print(f"    ratio wall {r['ratio_wall']:.2f}x   ratio per output clip {r['ratio_per_output_clip']:.2f}x   "
              f"(target <= {target}x)   peak RSS {r['peak_rss_mib']:.0f} MiB")
        print(f"    CPU {r['cpu_s']:.1f} s = {r['ratio_cpu']:.2f}x the floor's (load-independent: the work done)")
        print("    busy fraction: " + ", ".join(f"{name} {frac:.2f} (x{r['workers'][name]})"
                                                for name, frac in r["busy_fraction"].items()))
        if "stage_cpu_s" in r:  # measured above unless --no-stage-cpu
            staged = sum(r["stage_cpu_s"].values()) + sum(r["stage_setup_cpu_s"].values())
            print(f"    CPU-s per stage (one process, sources one after another; the floor: {floor_cpu:.1f} CPU-s "
                  f"for decode + encode): " + ", ".join(f"{k} {v:.1f}" for k, v in r["stage_cpu_s"].items())
                  + "".join(f"; {k} setup (once per process) {v:.1f}" for k, v in r["stage_setup_cpu_s"].items())
                  + f"; all stages {staged:.1f}, the rest of the job (start-up, Prefect, pack, report, scheduling) "
                  f"{r['cpu_s'] - staged:.1f}")
    if args.json:
        Path(args.json).write_text(json.dumps({
            "clips": args.clips, "windows_per_source": windows, "crf": crf, "preset": args.preset,
            "load_at_start": round(load, 2), "floor_s": round(floor_s, 2),
            "floor_runs_s": [round(f[0], 2) for f in floors], "floor_cpu_s": round(floor_cpu, 2), "floor_clips": floor_clips, "jobs": results}, indent=1))
    if not args.workdir:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
