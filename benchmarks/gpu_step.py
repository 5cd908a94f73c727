"""One training step and one generation step of a Wan-1.3B-sized random-init causal DiT (bf16, compiled
flex-attention with a cached chunk-causal BlockMask): step time, peak memory and MFU.

    .venv/bin/python benchmarks/gpu_step.py                # on a GPU: Wan2.1-1.3B shapes, 480x832, 21 latents
    .venv/bin/python benchmarks/gpu_step.py --tiny         # CPU smoke path: tiny shapes, same code

Training step: 7 chunks (21 latent frames of 60x104 -> 32,760 tokens), chunk-causal attention, per-chunk sigmas,
text context of 512 tokens, flow-matching loss, backward, AdamW (fp32 master weights, bf16 autocast), gradient
checkpointing on. Generation step: one denoising step of the last chunk against a KV cache of the 6 chunks
before it, text and null branch as a batch of two (CFG); the cache write of a chunk is timed too.
MFU = model FLOPs (matmuls incl. causal self-attention and cross-attention; x3 for forward + backward, the
checkpointing recompute not counted) / step time / peak bf16 FLOP/s (H100/H200 SXM: 989e12 dense).
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from training.config import ModelConfig, PMRoPEConfig, TransformerConfig  # noqa: E402
from training.model.kv_cache import KVCache  # noqa: E402
from training.model.wan_causal import CausalContext, build_model, remind_forward  # noqa: E402

WAN_13B = TransformerConfig(num_attention_heads=12, attention_head_dim=128, in_channels=16, out_channels=16,
                            text_dim=4096, freq_dim=256, ffn_dim=8960, num_layers=30, rope_max_seq_len=1024)
TINY = TransformerConfig()
PEAK_BF16 = {"H100": 989e12, "H200": 989e12, "A100": 312e12}


def model_flops(cfg: TransformerConfig, params: int, tokens_per_frame: int, chunks: int, text_len: int,
                cached_chunks: int = 0) -> float:
    """Forward FLOPs of ``chunks`` chunks (3 latent frames each) after ``cached_chunks`` cached ones."""
    d = cfg.num_attention_heads * cfg.attention_head_dim
    chunk_tokens = 3 * tokens_per_frame
    queries = chunks * chunk_tokens
    dense = 2 * params * queries
    visible = sum((cached_chunks + k + 1) * chunk_tokens for k in range(chunks)) * chunk_tokens
    self_attn = 4 * d * visible * cfg.num_layers
    cross = 4 * d * queries * text_len * cfg.num_layers
    return dense + self_attn + cross


def timed(fn, repeats: int, device: torch.device) -> float:
    times = []
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize()
        started = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tiny", action="store_true", help="tiny shapes (CPU smoke path)")
    parser.add_argument("--steps", type=int, default=5, help="timed repeats after 2 warm-up (compile) runs")
    parser.add_argument("--backend", choices=["flex", "dense"], help="default: flex on CUDA, dense on CPU "
                        "(flex-attention has no CPU backward)")
    parser.add_argument("--peak-tflops", type=float, help="override the device's peak bf16 TFLOP/s")
    args = parser.parse_args(argv)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    args.backend = args.backend or ("flex" if device.type == "cuda" else "dense")
    shapes = TINY if args.tiny else WAN_13B
    height, width = (64, 112) if args.tiny else (480, 832)
    h, w = height // 8, width // 8
    text_len = 512
    torch.manual_seed(0)
    model = build_model(ModelConfig(tiny=shapes, pm_rope=PMRoPEConfig(phase_hidden=256 if not args.tiny else 32),
                                    attention_backend=args.backend, gradient_checkpointing=not args.tiny), device)
    params = sum(p.numel() for p in model.parameters())
    tokens_per_frame = (h // 2) * (w // 2)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-5, fused=device.type == "cuda")
    text = torch.randn(1, text_len, shapes.text_dim, device=device)
    cameras = torch.randn(1, 21, 14, device=device)
    x0 = torch.randn(1, 16, 21, h, w, device=device)
    noise = torch.randn_like(x0)
    sigmas = torch.rand(7, device=device).repeat_interleave(3)[None]
    xt = (1 - sigmas[:, None, :, None, None]) * x0 + sigmas[:, None, :, None, None] * noise
    ctx = CausalContext.chunked(21, cameras=cameras)
    autocast = torch.autocast(device.type, dtype=torch.bfloat16)

    def train_step() -> None:
        model.train()
        optimizer.zero_grad(set_to_none=True)
        with autocast:
            pred = remind_forward(model, xt, sigmas * 1000, text, ctx)
        loss = (pred.float() - (noise - x0)).pow(2).mean()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()

    for _ in range(2):
        train_step()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    train_s = timed(train_step, args.steps, device)
    train_mem = torch.cuda.max_memory_allocated() / 2**30 if device.type == "cuda" else float("nan")
    optimizer.zero_grad(set_to_none=True)
    del optimizer

    model.eval()
    context = torch.cat([text, torch.zeros_like(text)])
    cams2 = cameras.expand(2, -1, -1)
    cache = KVCache(len(model.blocks))
    tokens = tokens_per_frame

    def write(chunk: int) -> None:
        part = slice(3 * chunk, 3 * chunk + 3)
        positions, slots = torch.arange(part.start, part.stop), torch.full((3,), chunk)
        with torch.no_grad(), autocast:
            remind_forward(model, x0[:, :, part].expand(2, -1, -1, -1, -1), torch.zeros(2, 3, device=device),
                           context, CausalContext(positions, slots, cams2[:, part], cache=cache, write_cache=True))
        cache.commit(slots.repeat_interleave(tokens), slots.tolist(), positions.tolist())

    for chunk in range(6):
        write(chunk)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    last = slice(18, 21)

    def gen_step() -> None:
        with torch.no_grad(), autocast:
            remind_forward(model, xt[:, :, last].expand(2, -1, -1, -1, -1), torch.full((2, 3), 500.0, device=device),
                           context, CausalContext(torch.arange(18, 21), torch.full((3,), 6), cams2[:, last],
                                                  cache=cache))

    for _ in range(2):
        gen_step()
    gen_s = timed(gen_step, args.steps, device)
    gen_mem = torch.cuda.max_memory_allocated() / 2**30 if device.type == "cuda" else float("nan")

    name = torch.cuda.get_device_name() if device.type == "cuda" else "cpu"
    peak = args.peak_tflops * 1e12 if args.peak_tflops else next(
        (v for k, v in PEAK_BF16.items() if k in name), float("nan"))
    train_flops = 3 * model_flops(shapes, params, tokens_per_frame, 7, text_len)
    gen_flops = 2 * model_flops(shapes, params, tokens_per_frame, 1, text_len, cached_chunks=6)  # batch of 2
    print(f"device {name}; {params / 1e9:.3f} B parameters; {21 * tokens_per_frame} tokens; backend {args.backend}; "
          f"bf16 autocast; gradient checkpointing {not args.tiny}")
    print(f"train step: {train_s * 1000:.1f} ms, peak memory {train_mem:.2f} GiB, "
          f"{train_flops / 1e12:.1f} TFLOP, MFU {train_flops / train_s / peak:.3f}")
    print(f"generation step (1 chunk, CFG batch 2, 6 cached chunks): {gen_s * 1000:.1f} ms, peak memory "
          f"{gen_mem:.2f} GiB, MFU {gen_flops / gen_s / peak:.3f}")
    print(f"mask cache entries (built once per layout): {len(model.rope.masks)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
