"""Training and generation speed of the causal Wan DiT at the Wan2.1-1.3B shape (bf16), one speed change at a time.

    python benchmarks/device_train.py                 # on a GPU (benchmarks/device_check.sh runs it)
    python benchmarks/device_train.py --dry-run       # the same code paths on the CPU at tiny shapes (CI)

Training (random weights, 21 latent frames of 60x104 = 32,760 tokens, 7 chunks chunk-causal, text 512 tokens):
tokens/s and MFU of the production step (training.step: forward_backward, clip, AdamW), the baseline first, then
each change of the training config added on top of the ones before, so the gain of each is known:
gradient checkpointing off (``model.gradient_checkpointing: 0``; half the blocks if the whole model does not fit),
``model.compile_blocks``, ``optim.fused`` and ``metrics_sync: log_steps`` (no host sync in the step).
Generation: one denoising step of the last chunk against 6 cached chunks (CFG batch 2), its MFU, and seconds per
81-frame video (7 chunks through training.generate.sampler) at 8 and 20 steps, plus the VAE decode of one video
(full-size random-weight Wan VAE). MFU = model FLOPs (benchmarks.gpu_step.model_flops; x3 for training, the
checkpointing recompute not counted) / time / the device's peak dense bf16 FLOP/s.
"""
from __future__ import annotations

import argparse
import gc
import sys
import time
from contextlib import nullcontext
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from benchmarks.gpu_step import PEAK_BF16, TINY, WAN_13B, model_flops  # noqa: E402
from training.config import GenerateConfig, TrainConfig  # noqa: E402
from training.curriculum import TrainInputs  # noqa: E402
from training.generate.sampler import Chunk, Rollout, sample_rollout  # noqa: E402
from training.model.kv_cache import KVCache  # noqa: E402
from training.model.wan_causal import CausalContext, build_model, remind_forward  # noqa: E402
from training.step import StepMetrics, forward_backward, make_optimizer  # noqa: E402

FRAMES, TEXT_LEN = 21, 512
CHANGES = [("baseline (checkpointing every block, eager, AdamW foreach, metrics read every step)", {}),
           ("+ no gradient checkpointing", {"model": {"gradient_checkpointing": 0}}),
           ("+ compiled blocks", {"model": {"compile_blocks": True}}),
           ("+ fused AdamW", {"optim": {"fused": True}}),
           ("+ no host syncs in the step", {"metrics_sync": "log_steps"})]


def merged(base: dict, extra: dict) -> dict:
    out = dict(base)
    for key, value in extra.items():
        out[key] = merged(out.get(key, {}), value) if isinstance(value, dict) else value
    return out


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def free(device: torch.device) -> None:
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()


def train_inputs(h: int, w: int, device: torch.device) -> TrainInputs:
    gen = torch.Generator(device="cpu").manual_seed(0)
    x0 = torch.randn(1, 16, FRAMES, h, w, generator=gen).to(device)
    noise = torch.randn(1, 16, FRAMES, h, w, generator=gen).to(device)
    sigmas = torch.rand(7, generator=gen).repeat_interleave(3)[None].to(device)
    s = sigmas[:, None, :, None, None]
    return TrainInputs(x0=x0, noise=noise, xt=(1 - s) * x0 + s * noise, sigmas=sigmas,
                       loss_mask=torch.ones(1, FRAMES, dtype=torch.bool, device=device),
                       positions=torch.arange(FRAMES), slots=torch.arange(FRAMES) // 3,
                       cameras=torch.randn(1, FRAMES, 14, generator=gen).to(device))


def time_training(cfg: TrainConfig, inputs: TrainInputs, text: torch.Tensor, device: torch.device,
                  warmup: int, steps: int) -> tuple[float, float, int]:
    """Seconds per step (the production step), peak GiB, parameters. Metrics are read as ``metrics_sync`` says."""
    model = build_model(cfg.model, device, cfg.seed)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = make_optimizer(cfg.optim, params)
    autocast = torch.autocast(device.type, dtype=torch.bfloat16) if cfg.precision == "bf16" else nullcontext()

    def step(index: int, read: bool) -> None:
        optimizer.zero_grad(set_to_none=True)
        metrics = StepMetrics(device, 1)
        metrics.add_sample(forward_backward(model, inputs, text, index, cfg, autocast), "text")
        metrics.set_grad_norm(torch.nn.utils.clip_grad_norm_(params, cfg.optim.grad_clip))
        optimizer.step()
        if read:
            metrics.read()

    for index in range(warmup):
        step(index, True)
    synchronize(device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    started = time.perf_counter()
    for index in range(steps):
        step(warmup + index, cfg.metrics_sync == "every_step" or index == steps - 1)
    synchronize(device)
    seconds = (time.perf_counter() - started) / steps
    peak = torch.cuda.max_memory_allocated() / 2**30 if device.type == "cuda" else float("nan")
    count = sum(p.numel() for p in model.parameters())
    del model, optimizer
    return seconds, peak, count


def training(args: argparse.Namespace, device: torch.device, peak_flops: float) -> None:
    shapes = TINY if args.dry_run else WAN_13B
    h, w = (8, 14) if args.dry_run else (60, 104)
    tokens = FRAMES * (h // 2) * (w // 2)
    base = {"precision": "bf16", "model": {"tiny": shapes.model_dump(), "gradient_checkpointing": True,
                                           "attention_backend": "auto",
                                           "compile_backend": "aot_eager" if args.dry_run else "inductor",
                                           "pm_rope": {"phase_hidden": 32 if args.dry_run else 256}},
            "loss": {"delta_warmup_steps": 0}}
    inputs, text = train_inputs(h, w, device), torch.randn(1, TEXT_LEN, shapes.text_dim, device=device)
    print(f"training, {'TINY (dry run)' if args.dry_run else 'Wan2.1-1.3B'} shape, {tokens} tokens, bf16, "
          f"random weights, {args.steps} timed steps after {args.warmup} warm-up")
    settings, baseline = base, None
    for name, change in CHANGES:
        settings = merged(settings, change)
        try:
            seconds, peak, count = time_training(TrainConfig.model_validate(settings), inputs, text, device,
                                                 args.warmup, args.steps)
        except torch.OutOfMemoryError:
            free(device)
            if settings["model"]["gradient_checkpointing"] != 0:
                raise
            settings = merged(settings, {"model": {"gradient_checkpointing": shapes.num_layers // 2}})
            name += f" (out of memory: checkpointing {shapes.num_layers // 2} of {shapes.num_layers} blocks)"
            seconds, peak, count = time_training(TrainConfig.model_validate(settings), inputs, text, device,
                                                 args.warmup, args.steps)
        free(device)
        flops = 3 * model_flops(shapes, count, (h // 2) * (w // 2), 7, TEXT_LEN)
        baseline = baseline or seconds
        print(f"  {name}: {seconds * 1000:.1f} ms/step, {tokens / seconds:,.0f} tokens/s, "
              f"MFU {flops / seconds / peak_flops:.3f}, x{baseline / seconds:.2f} vs baseline, peak {peak:.1f} GiB")
    print(f"  training config of the last line: model.gradient_checkpointing "
          f"{settings['model']['gradient_checkpointing']}, compile_blocks true, optim.fused true, "
          f"metrics_sync log_steps (target MFU >= 0.40)")


def generation(args: argparse.Namespace, device: torch.device, peak_flops: float) -> None:
    shapes = TINY if args.dry_run else WAN_13B
    h, w = (8, 14) if args.dry_run else (60, 104)
    tokens_per_frame = (h // 2) * (w // 2)
    cfg = TrainConfig.model_validate({"model": {"tiny": shapes.model_dump(), "compile_blocks": args.compile_gen,
                                                "compile_backend": "aot_eager" if args.dry_run else "inductor",
                                                "pm_rope": {"phase_hidden": 32 if args.dry_run else 256}}})
    model = build_model(cfg.model, device, 0).eval()
    autocast = torch.autocast(device.type, dtype=torch.bfloat16)  # as training.generate runs it
    count = sum(p.numel() for p in model.parameters())
    gen = torch.Generator(device="cpu").manual_seed(0)
    text = torch.randn(1, TEXT_LEN, shapes.text_dim, generator=gen).to(device)
    context = torch.cat([text, torch.zeros_like(text)])
    cameras = torch.randn(2, FRAMES, 14, generator=gen).to(device)
    x = torch.randn(2, 16, FRAMES, h, w, generator=gen).to(device)
    cache = KVCache(len(model.blocks))
    with torch.no_grad(), autocast:
        for chunk in range(6):
            part = slice(3 * chunk, 3 * chunk + 3)
            positions, slots = torch.arange(part.start, part.stop), torch.full((3,), chunk)
            remind_forward(model, x[:, :, part], torch.zeros(2, 3, device=device), context,
                           CausalContext(positions, slots, cameras[:, part], cache=cache, write_cache=True))
            cache.commit(slots.repeat_interleave(tokens_per_frame), slots.tolist(), positions.tolist())

        def one_step() -> None:
            remind_forward(model, x[:, :, 18:], torch.full((2, 3), 500.0, device=device), context,
                           CausalContext(torch.arange(18, 21), torch.full((3,), 6), cameras[:, 18:], cache=cache))

        for _ in range(args.warmup):
            one_step()
        synchronize(device)
        started = time.perf_counter()
        for _ in range(args.steps):
            one_step()
        synchronize(device)
    seconds = (time.perf_counter() - started) / args.steps
    flops = 2 * model_flops(shapes, count, tokens_per_frame, 1, TEXT_LEN, cached_chunks=6)
    print(f"generation, bf16 autocast, compiled blocks {args.compile_gen}: 1-chunk denoising step (CFG batch 2, 6 "
          f"cached chunks) {seconds * 1000:.1f} ms, MFU {flops / seconds / peak_flops:.3f} (target >= 0.45)")
    rollout = Rollout([Chunk(list(range(3 * c, 3 * c + 3)), cameras[0, 3 * c:3 * c + 3].cpu()) for c in range(7)],
                      (16, h, w))
    null = torch.zeros_like(text)
    for steps in (8, 20):
        settings = GenerateConfig(steps=steps // 8 if args.dry_run else steps, scheduler="unipc")
        synchronize(device)
        started = time.perf_counter()
        with autocast:
            sample_rollout(model, rollout, text, null, settings, seed=0)
        synchronize(device)
        print(f"  81-frame video (7 chunks) at {settings.steps} steps: {time.perf_counter() - started:.2f} s "
              f"(sampler; VAE decode below)")
    del model, cache
    free(device)
    from diffusers import AutoencoderKLWan

    vae = (AutoencoderKLWan(base_dim=8, num_res_blocks=1) if args.dry_run else AutoencoderKLWan()).to(device).eval()
    latents = torch.randn(1, 16, 5 if args.dry_run else FRAMES, h, w, generator=gen).to(device)
    with torch.no_grad(), torch.autocast(device.type, dtype=torch.bfloat16):
        synchronize(device)
        started = time.perf_counter()
        frames = vae.decode(latents).sample
        synchronize(device)
    print(f"  VAE decode of one video ({frames.shape[2]} frames {frames.shape[3]}x{frames.shape[4]}, random-weight "
          f"{'tiny' if args.dry_run else 'full-size'} Wan VAE): {time.perf_counter() - started:.2f} s")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dry-run", action="store_true", help="tiny shapes on the CPU, the same code paths")
    parser.add_argument("--steps", type=int, default=None, help="timed steps (default 6; 1 in a dry run)")
    parser.add_argument("--warmup", type=int, default=None, help="untimed steps first (default 3; 1 in a dry run)")
    parser.add_argument("--compile-gen", action="store_true", help="generation with compiled blocks (the KV-cache "
                        "read is indexed by layer: one compilation per block)")
    parser.add_argument("--only", choices=["train", "generate"], help="one part only")
    args = parser.parse_args(argv)
    args.steps = args.steps or (1 if args.dry_run else 6)
    args.warmup = args.warmup or (1 if args.dry_run else 3)
    device = torch.device("cpu" if args.dry_run or not torch.cuda.is_available() else "cuda")
    if args.dry_run:
        torch.set_num_threads(1)  # OpenMP spinning on a few busy cores makes CPU kernels many times slower
    if device.type == "cpu" and not args.dry_run:
        parser.error("no CUDA device: run with --dry-run")
    name = torch.cuda.get_device_name() if device.type == "cuda" else "cpu"
    peak_flops = next((v for k, v in PEAK_BF16.items() if k in name), 989e12)
    print(f"device {name}; MFU against {peak_flops / 1e12:.0f} TFLOP/s dense bf16")
    if args.only != "generate":
        training(args, device, peak_flops)
    if args.only != "train":
        generation(args, device, peak_flops)
    return 0


if __name__ == "__main__":
    sys.exit(main())
