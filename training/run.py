"""``train(shards, config, out)``: the entry the CLI and the Prefect flow call. Ray Train TorchTrainer + resume.

OUT holds ``config.yaml`` (the resolved config), ``metrics.jsonl``, ``heatmaps/*.png``, ``checkpoints/<run_name>/``
(Ray Train checkpoints: model.safetensors, optim.pt, state.json) and ``summary.json``. A second call with the same
OUT resumes from the latest checkpoint: Ray Train reattaches to the run of the same name and storage path and the
workers restore it through ``ray.train.get_checkpoint()``.
"""
from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from training.config import RayTrainConfig, TrainConfig, load_train_config


@contextlib.contextmanager
def ray_session(cfg: RayTrainConfig) -> Iterator[None]:
    """Ray for the block (engine.runtime: the one already up, the cluster at ``cfg.address``, or a local Ray that
    is shut down, its session folder removed, when the block ends)."""
    from engine.runtime import ray_session as runtime_session

    with runtime_session(cfg.address or None, num_cpus=cfg.num_cpus or 0, min_free_disk_gib=cfg.min_free_disk_gib,
                         log_to_driver=False):
        yield


def _worker(config: dict[str, Any]) -> None:
    """Runs in every Ray Train worker."""
    import ray.train
    import ray.train.torch
    import torch

    from training.data import MixtureSampler
    from training.loop import train_loop

    cfg, out = TrainConfig.model_validate(config["train"]), Path(config["out"])
    text_dir = Path(config["text_dir"]) if config.get("text_dir") else None
    torch.set_num_threads(cfg.ray.torch_threads)
    rank = ray.train.get_context().get_world_rank()
    shard = ray.train.get_dataset_shard("train")
    rows = MixtureSampler(lambda: shard.iter_rows(), cfg.data.mixture, seed=cfg.seed + 7919 * rank)

    def report(metrics: dict[str, Any], directory: Path | None) -> None:
        checkpoint = ray.train.Checkpoint.from_directory(str(directory)) if directory is not None else None
        ray.train.report(metrics, checkpoint=checkpoint)

    device = ray.train.torch.get_device()
    checkpoint = ray.train.get_checkpoint()
    if checkpoint is None:
        train_loop(cfg, out, rows, device, None, report, rank, text_dir)
        return
    with checkpoint.as_directory() as directory:
        train_loop(cfg, out, rows, device, Path(directory), report, rank, text_dir)


def summarise(metrics_path: Path) -> dict[str, Any]:
    """First/last loss overall and per regime from metrics.jsonl."""
    records = [json.loads(line) for line in metrics_path.read_text().splitlines() if line.strip()]
    if not records:
        return {"logged_steps": 0}
    per_regime: dict[str, dict[str, float]] = {}
    for record in records:
        entry = per_regime.setdefault(record["regime"], {"first_loss": record["loss"], "count": 0})
        entry["last_loss"], entry["count"] = record["loss"], entry["count"] + 1
    head, tail = records[: max(1, len(records) // 4)], records[-max(1, len(records) // 4):]
    return {"logged_steps": len(records), "first_step": records[0]["step"], "last_step": records[-1]["step"],
            "loss_first": records[0]["loss"], "loss_last": records[-1]["loss"],
            "loss_first_quarter_mean": sum(r["loss"] for r in head) / len(head),
            "loss_last_quarter_mean": sum(r["loss"] for r in tail) / len(tail), "per_regime": per_regime}


def train(shards: Path, config_path: Path | None, out: Path, max_steps: int | None = None) -> dict[str, Any]:
    """Train on ``shards`` (a folder of *.tar) with the YAML ``config_path`` (None = tiny defaults) into ``out``."""
    import ray.train
    from ray.train.torch import TorchTrainer

    from training.data import build_dataset
    from training.encode import encode_shards, encode_text_cache

    cfg = load_train_config(config_path, {"max_steps": max_steps} if max_steps else None)
    out = Path(out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.yaml").write_text(yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False))
    with ray_session(cfg.ray):
        latent_dir = encode_shards(Path(shards), cfg) if cfg.data.latents == "cache" else None
        text_dir = encode_text_cache(Path(shards), cfg)
        resources = {"CPU": cfg.ray.cpus_per_worker}
        if cfg.ray.use_gpu:
            resources["GPU"] = cfg.ray.gpus_per_worker
        trainer = TorchTrainer(
            _worker,
            train_loop_config={"train": cfg.model_dump(mode="json"), "out": str(out),
                               "text_dir": str(text_dir) if text_dir else None},
            scaling_config=ray.train.ScalingConfig(num_workers=cfg.ray.num_workers, use_gpu=cfg.ray.use_gpu,
                                                   resources_per_worker=resources),
            run_config=ray.train.RunConfig(
                name=cfg.run_name, storage_path=str(out / "checkpoints"),
                checkpoint_config=ray.train.CheckpointConfig(num_to_keep=cfg.keep_checkpoints)),
            datasets={"train": build_dataset(Path(shards), cfg.data, latent_dir)},
        )
        result = trainer.fit()
    starts = [json.loads(line) for line in (out / "events.jsonl").read_text().splitlines() if line.strip()]
    summary = {**summarise(out / "metrics.jsonl"), "out": str(out),
               "resumed_from_step": starts[-1]["step"] if starts and starts[-1]["resumed"] else None,
               "checkpoint": result.checkpoint.path if result.checkpoint else None,
               "latents": str(latent_dir) if latent_dir else None, "text": str(text_dir) if text_dir else None,
               "heatmaps": sorted(str(p) for p in (out / "heatmaps").glob("*.png"))}
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    return summary
