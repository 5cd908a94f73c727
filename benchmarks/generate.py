"""Streaming generation speed of a config (default tiny) on this machine: chunks/s of the sampler and peak memory.

    .venv/bin/python benchmarks/generate.py [--config configs/train-tiny.yaml] [--rollouts 3] [--steps 8]

A random-init model of the config (the speed does not depend on the weights) generates I2V rollouts of 7 chunks
through the KV cache with classifier-free guidance (text and null branch as a batch of two), ``--steps`` denoising
steps per chunk. chunks/s = generated chunks / sampler wall time (VAE decode timed separately: once per video).
Peak memory: the process's peak RSS (and CUDA's peak allocation on a GPU).
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from benchmarks.common import PeakRSS  # noqa: E402
from training.config import load_train_config  # noqa: E402
from training.generate.sampler import Chunk, Rollout, sample_rollout  # noqa: E402
from training.model.wan_causal import build_model  # noqa: E402
from training.vae import LatentEncoder  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", type=Path, default=Path("configs/train-tiny.yaml"))
    parser.add_argument("--rollouts", type=int, default=3)
    parser.add_argument("--steps", type=int, help="denoising steps per chunk (default: the config's)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args(argv)
    cfg = load_train_config(args.config, {"generate": {"steps": args.steps}} if args.steps else None)
    torch.set_num_threads(cfg.ray.torch_threads)
    device = torch.device(args.device)
    model = build_model(cfg.model, device, cfg.seed).eval()
    dim = model.config.text_dim
    h, w = cfg.data.height // 8, cfg.data.width // 8
    text, null = torch.randn(1, cfg.text.max_length, dim, device=device), torch.zeros(1, cfg.text.max_length, dim,
                                                                                     device=device)
    cameras = torch.zeros(21, 14)
    rollout = Rollout([Chunk(list(range(3 * c, 3 * c + 3)), cameras[3 * c:3 * c + 3]) for c in range(7)], (16, h, w))
    vae = LatentEncoder(cfg.vae, device)
    peak = PeakRSS().__enter__()
    sample_rollout(model, Rollout(rollout.chunks[:1], rollout.shape), text, null, cfg.generate, 0)  # warm-up
    started = time.perf_counter()
    latents = None
    for index in range(args.rollouts):
        latents = sample_rollout(model, rollout, text, null, cfg.generate, index).latents
    wall = time.perf_counter() - started
    started = time.perf_counter()
    vae.decode(torch.cat(latents, dim=1))
    decode_s = time.perf_counter() - started
    peak.__exit__(None, None, None)
    chunks = 7 * args.rollouts
    print(f"config {args.config}, device {device}, {cfg.generate.steps} steps/chunk, guidance {cfg.generate.guidance}, "
          f"{cfg.generate.scheduler}, latent {h}x{w}, {torch.get_num_threads()} torch threads")
    print(f"chunks/s: {chunks / wall:.3f} ({chunks} chunks in {wall:.2f} s; "
          f"{wall / chunks / cfg.generate.steps * 1000:.1f} ms per denoising step incl. CFG)")
    print(f"VAE decode of one 81-frame video: {decode_s:.2f} s")
    print(f"peak RSS: {peak.peak / 2**20:.0f} MiB")
    if device.type == "cuda":
        print(f"peak CUDA memory: {torch.cuda.max_memory_allocated() / 2**30:.2f} GiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
