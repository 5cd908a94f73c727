"""``generate(run, shards, mode, out)``: videos from a ``train`` output folder's latest checkpoint.

OUT gets ``videos/<key>.mp4`` (the rollout decoded with the VAE: the given chunks as they were, the generated ones
in their place), ``clean/<key>.mp4`` (the clean clip at the model's frame size, the reference of the recovery
metrics), ``heatmaps/<key>.png`` (+ .json; KV importance of each generated chunk, given chunks hatched) and
``manifest.jsonl``: one line per sample with its status (ok / failed with the error), prompt, seed, checkpoint id,
sample key, and the first generated frame. The config is the run's ``config.yaml`` with ``--config`` on top.
"""
from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterator
from contextlib import nullcontext
from itertools import islice
from pathlib import Path
from typing import Any

import numpy as np
import torch

from schemas.constants import CHUNK_SIZE
from schemas.sample_io import decode_sample
from schemas.shards import raw_samples
from training.cameras import sample_cameras
from training.config import TrainConfig, checked
from training.data import shard_paths
from training.generate.rollouts import MODES, build_plan, latent_to_first_frame
from training.generate.sampler import sample_rollout
from training.generate.video import write_mp4
from training.heatmap import resolve_layers, save_heatmap
from training.model.wan_causal import load_remind_transformer
from training.text import TextConditioner, encode_texts, text_dir_for
from training.vae import LatentEncoder


def latest_checkpoint(run: Path) -> Path:
    """The newest ``checkpoints/<run_name>/checkpoint_*`` of a train output folder (or a checkpoint folder)."""
    run = Path(run)
    if (run / "state.json").exists():
        return run
    found = sorted(run.glob("checkpoints/*/checkpoint_*"), key=lambda p: json.loads(
        (p / "state.json").read_text())["step"] if (p / "state.json").exists() else -1)
    if not found:
        raise FileNotFoundError(f"no checkpoint under {run}/checkpoints: is it a train output folder?")
    return found[-1]


def run_config(run: Path, config: Path | None) -> TrainConfig:
    base = Path(run) / "config.yaml"
    return checked(TrainConfig.load(base if base.exists() else None, config))


def read_samples(shards: Path) -> Iterator[dict[str, Any]]:
    """The raw samples of every shard in order, one at a time: a shard is opened when its first sample is needed,
    and a sample ends at the next one's first header (512 bytes), so ``islice(.., n)`` reads n samples' bytes."""
    for path in shard_paths(shards):
        for raw in raw_samples(path):
            yield {k: v for k, v in raw.items() if k == "__key__" or not k.startswith("__")}


def sample_seed(seed: int, key: str) -> int:
    return int.from_bytes(hashlib.sha256(f"{seed}:{key}".encode()).digest()[:4], "little")


def generate(run: Path, shards: Path, mode: str, out: Path, config: Path | None = None,
             limit: int | None = None, device: str | None = None) -> dict[str, Any]:
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r} (expected one of {MODES})")
    cfg = run_config(run, config)
    gen = cfg.generate
    torch.set_num_threads(cfg.ray.torch_threads)
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    out = Path(out)
    for sub in ("videos", "clean", "heatmaps"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    checkpoint = latest_checkpoint(run)
    step = json.loads((checkpoint / "state.json").read_text())["step"]
    checkpoint_id = f"{cfg.run_name}/{checkpoint.name}@{step}"
    model = load_remind_transformer(checkpoint, device, cfg.model.attention_backend)
    vae = LatentEncoder(cfg.vae, device)
    size = (cfg.data.height, cfg.data.width)
    raws = list(islice(read_samples(shards), limit))  # lazy: a shard past the first ``limit`` samples is never opened
    text_dir = text_dir_for(shards, cfg) if cfg.text.encoder == "umt5" else None
    texts = TextConditioner(cfg, text_dir, model.config.text_dim, device)
    prompts = {}
    for raw in raws:
        caption = raw.get("txt", b"").decode() if isinstance(raw.get("txt"), bytes) else ""
        instruction = raw["degraded.txt"].decode() if isinstance(raw.get("degraded.txt"), bytes) else ""
        prompts[raw["__key__"]] = texts.prompt(caption, instruction)
    if text_dir is not None:
        encode_texts([p for p in prompts.values() if p], text_dir, cfg, use_ray=False)
    layers = resolve_layers(gen.heatmap_layers, len(model.blocks))
    records, chunks_done, started = [], 0, time.perf_counter()
    for raw in raws:
        key = str(raw.get("__key__"))
        record: dict[str, Any] = {"key": key, "mode": mode, "checkpoint": checkpoint_id, "checkpoint_step": step,
                                  "prompt": prompts.get(key), "text": "text" if prompts.get(key) else "missing",
                                  "seed": sample_seed(gen.seed, key)}
        try:
            record.update(_one(raw, mode, cfg, model, vae, texts, size, layers, out, record["seed"],
                               prompts.get(key)))
            chunks_done += record["generated_chunks"]
            record["status"] = "ok"
        except Exception as exc:  # one bad sample never stops the run
            record.update(status="failed", error=f"{type(exc).__name__}: {str(exc)[:300]}")
        records.append(record)
    with (out / "manifest.jsonl").open("w") as handle:
        handle.writelines(json.dumps(r) + "\n" for r in records)
    wall = time.perf_counter() - started
    summary = {"out": str(out), "mode": mode, "checkpoint": checkpoint_id, "samples": len(records),
               "ok": sum(r["status"] == "ok" for r in records), "failed": sum(r["status"] != "ok" for r in records),
               "generated_chunks": chunks_done, "wall_s": round(wall, 2),
               "chunks_per_s": round(chunks_done / wall, 3) if wall else None}
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    return summary


def _one(raw: dict[str, Any], mode: str, cfg: TrainConfig, model: torch.nn.Module, vae: LatentEncoder,
         texts: TextConditioner, size: tuple[int, int], layers: set[int], out: Path, seed: int,
         prompt: str | None) -> dict[str, Any]:
    sample = decode_sample(raw)
    clean_frames = sample.clean_frames(size)
    latents = {"clean": vae.encode(clean_frames)}
    if sample.degraded_mp4 is not None:
        latents["observed"] = vae.encode(sample.degraded_frames(size))
    clean_cams, observed_cams = sample_cameras(sample)
    cameras = {"clean": torch.as_tensor(clean_cams), "observed": torch.as_tensor(observed_cams)}
    plan = build_plan(mode, sample.graph, latents, cameras, cfg.generate)
    device = next(model.parameters()).device
    autocast = (torch.autocast(device.type, dtype=torch.bfloat16) if cfg.precision == "bf16" else nullcontext())
    with autocast:
        result = sample_rollout(model, plan.rollout, texts.embed(prompt), texts.null, cfg.generate, seed, layers)
    full = latents.get(plan.prefix_source or "clean", latents["clean"]).clone()
    generated = [c for c, chunk in zip(plan.source_chunks, plan.rollout.chunks) if chunk.given is None]
    for chunk_index, chunk, values in zip(plan.source_chunks, plan.rollout.chunks, result.latents):
        if chunk.given is None:
            full[:, chunk_index * CHUNK_SIZE:(chunk_index + 1) * CHUNK_SIZE] = values.to(full)
    frames = vae.decode(full)
    key = sample.key
    write_mp4(frames, out / "videos" / f"{key}.mp4", cfg.generate.fps)
    write_mp4(clean_frames[: len(frames)], out / "clean" / f"{key}.mp4", cfg.generate.fps)
    labels = [f"{c.role}{src}@{c.positions[0]}" for src, c in zip(plan.source_chunks, plan.rollout.chunks)]
    heatmap = None
    if result.attention is not None:
        mass = result.attention.numpy()
        heatmap = save_heatmap(np.nan_to_num(mass), out / "heatmaps" / f"{key}.png",
                               f"KV importance, {mode}, {key}", labels, unavailable=np.isnan(mass).all(axis=1))
    first = min(generated)
    suffix_start = 1 if mode == "i2v" else latent_to_first_frame(first * CHUNK_SIZE)
    return {"video": f"videos/{key}.mp4", "clean_video": f"clean/{key}.mp4", "frames": int(len(frames)),
            "suffix_start_frame": int(suffix_start), "generated_chunks": len(generated),
            "positions": [c.positions for c in plan.rollout.chunks], "roles": [c.role for c in plan.rollout.chunks],
            "heatmap": str(heatmap.relative_to(out)) if heatmap else None,
            "prefix_source": plan.prefix_source, "interruption": sample.graph.interruption.kind.value}
