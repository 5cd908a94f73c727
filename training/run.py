"""``train(shards, config, out)``: the entry the CLI and the Prefect flow call. Ray Train TorchTrainer + resume.

OUT (a folder or ``s3://bucket/prefix``) holds ``config.yaml`` (the resolved config), ``metrics.jsonl``,
``events.jsonl``, ``heatmaps/*.png``, ``checkpoints/<run_name>/`` (Ray Train checkpoints: the model, optim.pt,
state.json and ``history/``, the logs up to the checkpoint's step) and ``summary.json``. A second call with the same
OUT resumes from the latest checkpoint: Ray Train reattaches to the run of the same name and storage path and the
workers restore it through ``ray.train.get_checkpoint()``; a worker or node lost mid-run restarts the worker group
from the latest checkpoint (``ray.max_failures``).

No shared disk: the workers write their logs only on their own node and into each checkpoint; the driver writes
OUT's logs and summary from the final checkpoint (read from the storage path: the bucket on a cluster).
"""
from __future__ import annotations

import contextlib
import json
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from training.config import RayTrainConfig, TrainConfig, load_train_config
from training.storage import display, download_tree, is_url, resolve, upload_tree, write_bytes


@contextlib.contextmanager
def ray_session(cfg: RayTrainConfig) -> Iterator[None]:
    """Ray for the block (engine.runtime: the one already up, the cluster at ``cfg.address``, or a local Ray that
    is shut down, its session folder removed, when the block ends)."""
    from engine.runtime import ray_session as runtime_session

    with runtime_session(cfg.address or None, num_cpus=cfg.num_cpus or 0, min_free_disk_gib=cfg.min_free_disk_gib,
                         log_to_driver=False):
        yield


HISTORY = "history"  # in every checkpoint: metrics.jsonl, events.jsonl and heatmaps/ of the run up to its step


def _node_ids(node: str) -> list[str]:
    """The Ray node of every worker, by rank (one all-gather over the process group Ray Train set up)."""
    import torch.distributed as dist

    if not dist.is_available() or not dist.is_initialized() or dist.get_world_size() == 1:
        return [node]
    nodes: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(nodes, node)
    return [str(n) for n in nodes]


def _worker(config: dict[str, Any]) -> None:
    """Runs in every Ray Train worker. The loop writes its logs into a folder of this worker's own node; they leave
    the node only inside each checkpoint (``history/``, uploaded by Ray Train to the storage path, a bucket on a
    cluster) and come back with it on a restore, so a resumed run's log continues from the checkpoint's step."""
    import ray
    import ray.train
    import ray.train.torch
    import torch

    from training.data import MixtureSampler
    from training.loop import train_loop

    cfg = TrainConfig.model_validate(config["train"])
    text_dir = Path(config["text_dir"]) if config.get("text_dir") else None
    torch.set_num_threads(cfg.ray.torch_threads)
    rank = ray.train.get_context().get_world_rank()
    shard = ray.train.get_dataset_shard("train")
    rows = MixtureSampler(lambda: shard.iter_rows(), cfg.data.mixture, seed=cfg.seed + 7919 * rank)
    node = ray.get_runtime_context().get_node_id()
    start_info = {"nodes": _node_ids(node)}

    with tempfile.TemporaryDirectory(prefix="remind-train-") as staging_dir:
        staging = Path(staging_dir)

        def report(metrics: dict[str, Any], directory: Path | None) -> None:
            checkpoint = None
            if directory is not None:
                shutil.copytree(staging, directory / HISTORY)
                checkpoint = ray.train.Checkpoint.from_directory(str(directory))
            ray.train.report({**metrics, "node_id": node}, checkpoint=checkpoint)

        device = ray.train.torch.get_device()
        checkpoint = ray.train.get_checkpoint()
        if checkpoint is None:
            train_loop(cfg, staging, rows, device, None, report, rank, text_dir, start_info)
            return
        with checkpoint.as_directory() as directory:
            if rank == 0 and (Path(directory) / HISTORY).is_dir():
                shutil.copytree(Path(directory) / HISTORY, staging, dirs_exist_ok=True)
            train_loop(cfg, staging, rows, device, Path(directory), report, rank, text_dir, start_info)


def summarise(metrics_path: Path) -> dict[str, Any]:
    """First/last loss overall and per regime from metrics.jsonl."""
    lines = metrics_path.read_text().splitlines() if metrics_path.is_file() else []
    records = [json.loads(line) for line in lines if line.strip()]
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


def bucket_input_problem(shards: str, cfg: TrainConfig) -> str | None:
    """Why ``cfg`` cannot train on shards in a bucket (the encode step's caches live beside local shards), or None."""
    if cfg.data.latents == "cache":
        return (f"data.latents: cache writes the latent cache beside local shards; for {shards} set "
                "data.latents: on_the_fly (the VAE runs in the training workers)")
    if cfg.text.encoder != "none":
        return (f"text.encoder: {cfg.text.encoder} reads a text-embedding cache beside local shards; for {shards} "
                "set text.encoder: none")
    return None


def _inputs(shards: str, cfg: TrainConfig) -> tuple[Path | None, Path | None]:
    """The encode step's caches (latents, text embeddings) of local shards; shards in a bucket need none."""
    from training.encode import encode_shards, encode_text_cache

    if not is_url(shards):
        latent_dir = encode_shards(Path(shards), cfg) if cfg.data.latents == "cache" else None
        return latent_dir, encode_text_cache(Path(shards), cfg)
    problem = bucket_input_problem(shards, cfg)
    if problem:
        raise ValueError(problem)
    return None, None


def train(shards: Path | str, config_path: Path | None, out: Path | str, max_steps: int | None = None,
          ray_address: str | None = None) -> dict[str, Any]:
    """Train on ``shards`` (a folder of *.tar or ``s3://bucket/prefix``) with the YAML ``config_path`` (None = tiny
    defaults) into ``out`` (a folder or ``s3://bucket/prefix``: checkpoints and logs in the bucket).
    ``ray_address`` (else the config's ``ray.address``) names a running cluster."""
    import ray.train
    from ray.train.torch import TorchTrainer

    from training.data import build_dataset

    overrides: dict[str, Any] = {"max_steps": max_steps} if max_steps else {}
    if ray_address:
        overrides["ray"] = {"address": ray_address}
    cfg = load_train_config(config_path, overrides or None)
    shards = str(shards) if is_url(shards) else str(Path(shards).resolve())
    fs, out_path = resolve(out)  # a pyarrow filesystem (local or S3) and the path in it: one code path for both
    with tempfile.TemporaryDirectory(prefix="remind-train-out-") as working:
        local = Path(working)  # the run's logs gathered here, then written to OUT whole
        config_text = yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False).encode()
        write_bytes(fs, f"{out_path}/config.yaml", config_text)  # in OUT from the start (generate reads it)
        (local / "config.yaml").write_bytes(config_text)
        with ray_session(cfg.ray):
            latent_dir, text_dir = _inputs(shards, cfg)
            resources = {"CPU": cfg.ray.cpus_per_worker}
            if cfg.ray.use_gpu:
                resources["GPU"] = cfg.ray.gpus_per_worker
            trainer = TorchTrainer(
                _worker,
                train_loop_config={"train": cfg.model_dump(mode="json"),
                                   "text_dir": str(text_dir) if text_dir else None},
                scaling_config=ray.train.ScalingConfig(num_workers=cfg.ray.num_workers, use_gpu=cfg.ray.use_gpu,
                                                       resources_per_worker=resources,
                                                       placement_strategy=cfg.ray.placement_strategy),
                run_config=ray.train.RunConfig(
                    name=cfg.run_name, storage_path=f"{out_path}/checkpoints", storage_filesystem=fs,
                    checkpoint_config=ray.train.CheckpointConfig(num_to_keep=cfg.keep_checkpoints),
                    failure_config=ray.train.FailureConfig(max_failures=cfg.ray.max_failures)),
                datasets={"train": build_dataset(shards, cfg.data, latent_dir)},
            )
            result = trainer.fit()
        checkpoint = result.checkpoint
        if checkpoint is not None:  # the run's logs, as the last checkpoint holds them (from the bucket)
            download_tree(checkpoint.filesystem, f"{checkpoint.path}/{HISTORY}", local)
        starts = [json.loads(line) for line in (local / "events.jsonl").read_text().splitlines() if line.strip()] \
            if (local / "events.jsonl").is_file() else []
        summary = {**summarise(local / "metrics.jsonl"), "out": display(fs, out_path),
                   "resumed_from_step": starts[-1]["step"] if starts and starts[-1]["resumed"] else None,
                   "nodes": starts[-1].get("nodes") if starts else None,
                   "checkpoint": display(checkpoint.filesystem, checkpoint.path) if checkpoint else None,
                   "latents": str(latent_dir) if latent_dir else None, "text": str(text_dir) if text_dir else None,
                   "heatmaps": sorted(display(fs, f"{out_path}/heatmaps/{p.name}")
                                      for p in (local / "heatmaps").glob("*.png"))}
        (local / "summary.json").write_text(json.dumps(summary, indent=2))
        upload_tree(local, fs, out_path)
    return summary
