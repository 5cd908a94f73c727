"""The train flow: one coarse Prefect task around ``training.run.train`` (Ray Train does the distribution).

Deployed as ``train`` in prefect.yaml; rerunning with the same ``out`` resumes from the latest checkpoint.
"""
from __future__ import annotations

from pathlib import Path

from prefect import flow, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE


@task(name="train", cache_policy=NO_CACHE, persist_result=False)
def train_task(shards: str, config: str | None, out: str, max_steps: int | None = None) -> dict:
    from training.run import train

    return train(shards, Path(config) if config else None, out, max_steps=max_steps)  # paths or s3:// URLs


@flow(name="train", log_prints=True)
def train_flow(shards: str, config: str | None = "configs/train-tiny.yaml", out: str = "out/train",
               max_steps: int | None = None) -> dict:
    """Train the causal Wan DiT on ``shards`` (a folder of *.tar) into ``out``."""
    summary = train_task(shards, config, out, max_steps)
    lines = [f"# train {out}", "", f"steps {summary.get('first_step')}..{summary.get('last_step')}, "
             f"loss {summary.get('loss_first')} -> {summary.get('loss_last')}",
             f"resumed from step: {summary.get('resumed_from_step')}", f"checkpoint: `{summary.get('checkpoint')}`"]
    lines += [f"- heatmap `{path}`" for path in summary.get("heatmaps", [])]
    create_markdown_artifact(markdown="\n".join(lines), key="train-summary")
    return summary
