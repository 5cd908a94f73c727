"""Throughput of the VLM judge stage per backend and batch size, on synthetic random windows.

    .venv/bin/python benchmarks/vlm.py --windows 8 --batch-sizes 1,2,4

transformers: the tiny random Qwen3-VL (tasks.vlm.tiny) on this machine's CPU, through the real processor and
generate. openai: the OpenAIBackend against the scripted local server (tests/servers/openai_server.py), which
measures client-side overhead (MP4 encoding, HTTP, parsing), not a model. cross-clip: windows per model call and
windows/s when clips are judged one at a time (the local executor) vs concurrently through one SharedJudge.
Real-model figures come from a GPU host.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the test server lives in tests/, not installed

from schemas.config import VLMConfig  # noqa: E402
from tasks.records import SourceItem, Window  # noqa: E402
from tasks.vlm.backends import VLMBackend  # noqa: E402
from tasks.vlm.factory import make_backend  # noqa: E402
from tasks.vlm.batcher import SharedJudge  # noqa: E402
from tasks.vlm.judge import clip_input, judge_windows  # noqa: E402
from tasks.vlm.prompts import EventCatalog, as_catalog  # noqa: E402
from taxonomy import load_taxonomy  # noqa: E402


def synthetic_windows(count: int, frames: int, height: int, width: int, seed: int) -> list[Window]:
    rng = np.random.default_rng(seed)
    return [Window(SourceItem(f"bench-{i}", "synthetic", f"synthetic://{i}"), 0, 0,
                   rng.integers(0, 256, (frames, height, width, 3), dtype=np.uint8), (0.0, frames / 16))
            for i in range(count)]


def run(backend: VLMBackend, config: VLMConfig, windows: list[Window], catalog: EventCatalog) -> dict[str, float]:
    before = (backend.usage.requests, backend.usage.completion_tokens, backend.usage.prompt_tokens)
    start = time.perf_counter()
    judgements = judge_windows(windows, backend, config, catalog)
    elapsed = time.perf_counter() - start
    calls = backend.usage.requests - before[0]
    completion = backend.usage.completion_tokens - before[1]
    prompt = backend.usage.prompt_tokens - before[2]
    return {"clips_s": len(windows) / elapsed, "tok_s": completion / elapsed,
            "prompt_tok_per_call": prompt / max(calls, 1), "calls": calls,
            "accepted": sum(j.accepted for j in judgements), "seconds": elapsed}


def bench_transformers(args: argparse.Namespace, windows: list[Window], catalog: EventCatalog) -> list[tuple]:
    import torch

    from tasks.vlm.tiny import build_tiny_qwen3vl

    torch.set_num_threads(args.threads)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        bundle = build_tiny_qwen3vl(tmp)
        base = VLMConfig(backend="transformers", model=str(bundle), num_frames=args.num_frames,
                         min_pixels=args.min_pixels, max_pixels=args.max_pixels, max_new_tokens=args.max_new_tokens)
        backend = make_backend(base)
        judge_windows(windows[:1], backend, base, catalog)  # warm-up
        for batch_size in args.batch_sizes:
            config = base.model_copy(update={"batch_size": batch_size})
            device = "GPU" if torch.cuda.is_available() else "CPU"
            rows.append((f"transformers (tiny, {device})", batch_size, run(backend, config, windows, catalog)))
    return rows


def bench_openai(args: argparse.Namespace, windows: list[Window], catalog: EventCatalog) -> list[tuple]:
    from tests.servers.openai_server import Reply, ScriptedOpenAIServer

    event_id = catalog.ids()[0]
    answer = ('{"scene_cut": false, "event_type": "%s", "spatial_occupancy": 0.5, "temporal_occupancy": 0.9, '
              '"confidence": 0.8, "caption": "A person walks from left to right across the frame."}' % event_id)
    rows = []
    with ScriptedOpenAIServer(default=Reply(content=answer, delay_s=args.server_delay_s)) as server:
        for batch_size in args.batch_sizes:
            config = VLMConfig(backend="openai", model="benchmark-served-model", base_url=server.base_url,
                               num_frames=args.num_frames, min_pixels=args.min_pixels, max_pixels=args.max_pixels,
                               batch_size=batch_size, concurrency=batch_size, max_new_tokens=args.max_new_tokens)
            backend = make_backend(config)
            try:
                rows.append((f"openai (local stub, {args.server_delay_s:.2f} s/answer)", batch_size,
                             run(backend, config, windows, catalog)))
            finally:
                backend.close()  # type: ignore[attr-defined]
    return rows


def _judge_clips_through(judge: SharedJudge, clips: list[list[Window]], num_frames: int, concurrent: bool
                         ) -> float:
    """Seconds to judge every clip: one after another (the local executor) or all at once (threads)."""
    inputs = [[clip_input(w, num_frames) for w in clip] for clip in clips]
    start = time.perf_counter()
    if concurrent:
        with ThreadPoolExecutor(max_workers=len(inputs)) as pool:
            list(pool.map(judge.judge, inputs))
    else:
        for clip in inputs:
            judge.judge(clip)
    return time.perf_counter() - start


def bench_cross_clip(args: argparse.Namespace, catalog: EventCatalog) -> list[str]:
    """Windows per model call when clips are judged one at a time vs concurrently through one SharedJudge."""
    import torch

    from tasks.vlm.tiny import build_tiny_qwen3vl

    torch.set_num_threads(args.threads)
    per_clip = args.windows_per_clip
    clips = [synthetic_windows(per_clip, args.frames, args.height, args.width, seed) for seed in range(args.clips)]
    lines = []
    with tempfile.TemporaryDirectory() as tmp:
        config = VLMConfig(backend="transformers", model=str(build_tiny_qwen3vl(tmp)), num_frames=args.num_frames,
                           min_pixels=args.min_pixels, max_pixels=args.max_pixels,
                           max_new_tokens=args.max_new_tokens, batch_size=args.cross_batch_size, batch_wait_s=0.2)
        backend = make_backend(config)
        judge_windows(clips[0][:1], backend, config, catalog)  # warm-up
        for mode, concurrent in (("one clip at a time (local executor)", False),
                                 (f"{args.clips} clips at once (threads)", True)):
            judge = SharedJudge(backend, config, catalog)
            seconds = _judge_clips_through(judge, clips, args.num_frames, concurrent)
            sizes = judge.batch_sizes
            lines.append(f"{mode:<40} batches {len(sizes):>3}  windows/batch {np.mean(sizes):>4.2f} "
                         f"(max {max(sizes)})  {args.clips * per_clip / seconds:>6.2f} windows/s")
    return lines


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--windows", type=int, default=8, help="synthetic windows per run")
    parser.add_argument("--frames", type=int, default=81, help="frames per synthetic window (81 = real)")
    parser.add_argument("--height", type=int, default=480)
    parser.add_argument("--width", type=int, default=832)
    parser.add_argument("--batch-sizes", type=lambda s: [int(x) for x in s.split(",")], default=[1, 2, 4])
    parser.add_argument("--backends", default="transformers,openai,cross-clip")
    parser.add_argument("--num-frames", type=int, default=8, help="vlm.num_frames sent to the model")
    parser.add_argument("--min-pixels", type=int, default=64 * 32 * 32)
    parser.add_argument("--max-pixels", type=int, default=128 * 32 * 32)
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads for the tiny model")
    parser.add_argument("--server-delay-s", type=float, default=0.0, help="simulated model latency of the stub")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--clips", type=int, default=6, help="cross-clip batching: clips judged")
    parser.add_argument("--windows-per-clip", type=int, default=2, help="= normalise.windows_per_video")
    parser.add_argument("--cross-batch-size", type=int, default=4, help="vlm.batch_size for cross-clip batching")
    args = parser.parse_args(argv)

    catalog = as_catalog(load_taxonomy())
    windows = synthetic_windows(args.windows, args.frames, args.height, args.width, args.seed)
    rows: list[tuple] = []
    backends = args.backends.split(",")
    if "transformers" in backends:
        rows += bench_transformers(args, windows, catalog)
    if "openai" in backends:
        rows += bench_openai(args, windows, catalog)

    print(f"VLM judge: {args.windows} windows of {args.frames}x{args.height}x{args.width}, "
          f"{args.num_frames} frames sent, max_pixels {args.max_pixels}, full taxonomy prompt "
          f"({len(catalog.ids())} event types)")
    print(f"{'backend':<40} {'batch':>5} {'clips/s':>8} {'tok/s':>8} {'prompt tok/call':>15} {'calls':>5} "
          f"{'accepted':>8}")
    for name, batch_size, r in rows:
        print(f"{name:<40} {batch_size:>5} {r['clips_s']:>8.2f} {r['tok_s']:>8.1f} {r['prompt_tok_per_call']:>15.0f} "
              f"{int(r['calls']):>5} {int(r['accepted']):>8}")
    if "cross-clip" in backends:
        import torch

        device = "CUDA " + torch.cuda.get_device_name() if torch.cuda.is_available() else "CPU"
        print(f"Cross-clip batching (tiny Qwen3-VL, {device}, batch_size {args.cross_batch_size}, "
              f"{args.windows_per_clip} windows per clip):")
        for line in bench_cross_clip(args, catalog):
            print("  " + line)
    print("Tiny random weights emit junk (every clip costs a retry and is rejected as unparseable), and the stub "
          "answers instantly: these figures measure pipeline overhead on this CPU, not a real model. Real Qwen3-VL "
          "figures come from a GPU host (configs/gpu.yaml).")


if __name__ == "__main__":
    main()
