"""The per-step training loop: one readable function, run by every Ray Train worker (or directly by benchmarks).

Each step: draw the regime (the same on every worker: seeded by the step), then per sample plan the slots, noise
them, predict the velocity, take the masked flow loss plus the gated temporal-delta loss, backward; then clip,
AdamW, warm-up schedule; read the metrics back (every step, or only at logged and checkpoint steps with
``metrics_sync: log_steps``), log, heatmap, checkpoint. A resumed run loads its checkpoint in one call; checkpoints
are saved and loaded by ``training.checkpoint``.
"""
from __future__ import annotations

import json
import math
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import numpy as np
import torch

from training.checkpoint import load_checkpoint, save_checkpoint
from training.config import TrainConfig
from training.curriculum import assemble, plan_regime, sample_regime
from training.data import TrainingSample, row_to_sample
from training.heatmap import kv_importance, save_heatmap
from training.distributed import wrap
from training.model.wan_causal import NEW_PARAMETER_MARK, build_model
from training.step import StepMetrics, forward_backward, make_optimizer
from training.text import TextConditioner
from training.vae import LatentEncoder

Report = Callable[[dict[str, Any], Path | None], None]


class MetricsLog:
    """metrics.jsonl: one JSON object per logged step. On resume, lines past the checkpoint are dropped."""

    def __init__(self, path: Path, resume_step: int) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        kept = []
        if path.exists():
            kept = [line for line in path.read_text().splitlines()
                    if line.strip() and json.loads(line)["step"] <= resume_step]
        path.write_text("".join(line + "\n" for line in kept))

    def write(self, record: dict[str, Any]) -> None:
        with self.path.open("a") as handle:
            handle.write(json.dumps(record) + "\n")


def heatmap(cfg: TrainConfig, model: torch.nn.Module, sample: TrainingSample, text: torch.Tensor, out: Path,
            step: int, device: torch.device) -> Path:
    """KV-importance of the observed clip along the streaming path, saved as heatmaps/kv_importance_<step>.png."""
    source = "observed" if sample.has_degraded else "clean"
    mass = kv_importance(model, sample.latents[source][None].to(device), sample.cameras[source][None].to(device),
                         text, cfg.heatmap_layers, query_stride=cfg.heatmap_query_stride, seed=cfg.seed)
    roles = [node.role.value[0].upper() for node in sample.graph.nodes]  # A(nchor) C(ontext) D(egraded) R(ecovery)
    title = f"KV importance, step {step}, {sample.key} ({sample.graph.interruption.kind.value})"
    return save_heatmap(mass, out / "heatmaps" / f"kv_importance_{step:06d}.png", title,
                        [f"{i}{r}" for i, r in enumerate(roles)])


def train_loop(cfg: TrainConfig, out: Path, rows: Iterator[dict[str, Any]], device: torch.device,
               resume_dir: Path | None = None, report: Report | None = None, rank: int = 0,
               text_dir: Path | None = None, start_info: dict[str, Any] | None = None) -> dict[str, Any]:
    """Train until ``cfg.max_steps``; returns the last step's metrics. ``report`` receives each checkpoint.
    ``start_info`` is added to the run's start event (events.jsonl), e.g. the nodes of the workers."""
    torch.manual_seed(cfg.seed)
    model = build_model(cfg.model, device, cfg.seed)
    for name, param in model.named_parameters():
        param.requires_grad_(not cfg.model.train_new_only or NEW_PARAMETER_MARK in name)
    ddp = wrap(model, cfg.ray.strategy, device)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = make_optimizer(cfg.optim, params)
    warmup = max(cfg.optim.warmup_steps, 1)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: min(1.0, (s + 1) / warmup))
    step = load_checkpoint(resume_dir, ddp, optimizer, scheduler) if resume_dir is not None else 0
    encoder = LatentEncoder(cfg.vae, device) if cfg.data.latents == "on_the_fly" else None
    if cfg.text.encoder == "umt5" and text_dir is None:
        raise ValueError("text.encoder is umt5 but no text embedding cache was given: run the encode step")
    texts = TextConditioner(cfg, text_dir, model.config.text_dim, device)
    log = MetricsLog(out / "metrics.jsonl", step) if rank == 0 else None
    if rank == 0:
        with (out / "events.jsonl").open("a") as events:
            events.write(json.dumps({"event": "start", "step": step, "resumed": resume_dir is not None,
                                     "time": time.time(), **(start_info or {})}) + "\n")
    autocast = (torch.autocast(device.type, dtype=torch.bfloat16) if cfg.precision == "bf16" else nullcontext())
    first_sample: TrainingSample | None = None
    metrics: dict[str, Any] = {"step": step, "resumed_from": step}
    all_finite = torch.ones((), dtype=torch.bool, device=device)  # read back with the metrics, never per step
    synced_step, synced_at = step, time.perf_counter()
    started_at = step  # every logged record says where its run (or resumed segment) started

    while step < cfg.max_steps:
        regime = sample_regime(cfg.curriculum.weights, np.random.default_rng([cfg.seed, step]))
        rng = np.random.default_rng([cfg.seed, step, rank, 1])
        noise_gen = torch.Generator().manual_seed(int(rng.integers(2**62)))
        model.train()
        optimizer.zero_grad(set_to_none=True)
        text_rng = np.random.default_rng([cfg.seed, step, rank, 2])
        step_metrics = StepMetrics(device, cfg.optim.grad_accum)
        for _ in range(cfg.optim.grad_accum):
            sample = row_to_sample(next(rows), encoder)
            first_sample = first_sample or sample
            plan = plan_regime(regime, sample.graph, rng, cfg.curriculum, sample.has_degraded)
            latents = {k: v.to(device) for k, v in sample.latents.items()}
            inputs = assemble(plan, latents, {k: v.to(device) for k, v in sample.cameras.items()}, noise_gen)
            text, text_status = texts.context(sample.caption, sample.instruction, text_rng)
            step_metrics.add_sample(forward_backward(ddp, inputs, text, step, cfg, autocast), text_status)
        step_metrics.set_grad_norm(torch.nn.utils.clip_grad_norm_(params, cfg.optim.grad_clip))
        optimizer.step()
        scheduler.step()
        step += 1
        all_finite &= step_metrics.finite()

        last = step == cfg.max_steps
        logged = step % cfg.log_every == 0 or step == 1 or last
        checkpointed = last or step % cfg.checkpoint_every == 0
        if cfg.metrics_sync == "every_step" or logged or checkpointed:
            averaged = step_metrics.read()  # the step's one device->host sync
            elapsed = (time.perf_counter() - synced_at) / (step - synced_step)
            synced_step, synced_at = step, time.perf_counter()
            metrics = {"step": step, "regime": regime, **averaged, "lr": scheduler.get_last_lr()[0],
                       "step_time_s": elapsed, "samples_per_s": cfg.optim.grad_accum / elapsed,
                       "resumed_from": started_at}
            if not bool(all_finite) or not all(math.isfinite(v) for v in averaged.values()):
                raise FloatingPointError(f"non-finite metrics at or before step {step}: {averaged}")
            if log is not None and logged:
                log.write(metrics)
        if rank == 0 and first_sample is not None and (last or (cfg.heatmap_every and step % cfg.heatmap_every == 0)):
            heatmap(cfg, model, first_sample, texts.embed(texts.prompt(first_sample.caption,
                                                                       first_sample.instruction)), out, step, device)
        if checkpointed:
            with tempfile.TemporaryDirectory() as tmp:
                save_checkpoint(Path(tmp), ddp, optimizer, scheduler, step, cfg, write=rank == 0)
                if report is not None:
                    report(metrics, Path(tmp) if rank == 0 else None)
    return metrics
