"""Training throughput of a config (default tiny): optimiser steps/s of the loop and samples/s of its loader.

    .venv/bin/python benchmarks/train.py --shards OUT/shards --steps 60
    .venv/bin/python benchmarks/train.py                       # synthetic 64x112 shards (tests' generator)

steps/s: the per-step loop (training.loop.train_loop) in this process on cached latents, the median step after a
warm-up of 5 steps (Ray Train start-up excluded; it is a fixed cost per run). loader samples/s: the Ray Data
loader over the latent shards through the mixture sampler, as the Ray Train workers read it.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine.runtime import configure_process  # noqa: E402

configure_process()

import torch  # noqa: E402
import webdataset as wds  # noqa: E402

from benchmarks.loader import loader_read, synthetic_shards  # noqa: E402
from training.config import load_train_config  # noqa: E402
from training.data import MixtureSampler, decode_latent_row, shard_paths  # noqa: E402
from training.encode import encode_shards, encode_text_cache  # noqa: E402
from training.loop import train_loop  # noqa: E402
from training.run import ray_session  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shards", type=Path, help="a folder of *.tar shards (default: synthetic ones)")
    parser.add_argument("--samples", type=int, default=8, help="synthetic samples when --shards is not given")
    parser.add_argument("--config", type=Path, default=Path("configs/train-tiny.yaml"))
    parser.add_argument("--steps", type=int, default=60)
    args = parser.parse_args(argv)

    cfg = load_train_config(args.config, {"max_steps": args.steps, "log_every": 1,
                                          "checkpoint_every": args.steps + 1})
    torch.set_num_threads(cfg.ray.torch_threads)
    with tempfile.TemporaryDirectory(prefix="train-bench") as tmp:
        shards = args.shards or synthetic_shards(Path(tmp) / "shards", args.samples)
        started = time.perf_counter()
        latent_dir = encode_shards(shards, cfg, use_ray=False)
        print(f"encode step (VAE latents, cached after the first run): {time.perf_counter() - started:.1f} s")
        rows = [decode_latent_row(raw) for path in shard_paths(latent_dir)
                for raw in wds.WebDataset(path, shardshuffle=False, empty_check=False)]
        out = Path(tmp) / "out"
        started = time.perf_counter()
        text_dir = encode_text_cache(shards, cfg, use_ray=False)
        train_loop(cfg, out, MixtureSampler(lambda: rows, cfg.data.mixture, cfg.seed), torch.device("cpu"),
                   text_dir=text_dir)
        wall = time.perf_counter() - started
        records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
        step_time = statistics.median(r["step_time_s"] for r in records[5:] or records)
        print(f"loop: {args.steps} steps in {wall:.1f} s (incl. model build, final heatmap); median step "
              f"{step_time * 1000:.0f} ms = {1 / step_time:.2f} steps/s; loss {records[0]['loss']:.3f} -> "
              f"{records[-1]['loss']:.3f}")
        with ray_session(cfg.ray):
            count, seconds, first = loader_read(shards, cfg, latent_dir, 2 * len(rows))
        print(f"loader (Ray Data over latent shards): {count / seconds:.1f} samples/s (first row after "
              f"{first:.1f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
