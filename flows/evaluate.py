"""The evaluate flow: train -> generate -> evaluate (Appendix D), the comparison table as a Markdown artifact.

Deployed as ``evaluate`` in prefect.yaml on a schedule. ``baselines`` are earlier generate folders (other
checkpoints or variants) reviewed in the same blind, shuffled pool, so the table compares them.
"""
from __future__ import annotations

from pathlib import Path

from prefect import flow, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from flows.generate import generate_task
from flows.train import train_task
from tasks.evaluate.run import UnreviewedExamples


@task(name="evaluate", cache_policy=NO_CACHE, persist_result=False)
def evaluate_task(videos: list[str], out: str, config: str | None) -> dict:
    from tasks.evaluate.run import evaluate

    return evaluate([Path(v) for v in videos], Path(out), Path(config) if config else None)


@flow(name="evaluate", log_prints=True)
def evaluate_flow(shards: str, eval_config: str, train_config: str | None = "configs/train-tiny.yaml",
                  run: str = "out/train", out: str = "out/evaluate", mode: str = "v2v", limit: int | None = 8,
                  max_steps: int | None = None, baselines: list[str] | None = None) -> dict:
    """Train (resuming ``run``), generate ``mode`` videos of up to ``limit`` samples, evaluate them (with
    ``baselines``) into ``out``; ``eval_config`` holds the reviewer's ``vlm:`` section."""
    train_task(shards, train_config, run, max_steps)
    videos = str(Path(out) / "videos" / mode)
    summary = generate_task(run, shards, mode, videos, None, limit)
    table_dir = Path(out) / "table"

    def publish() -> None:
        create_markdown_artifact(markdown=f"# evaluate {mode}: {summary['checkpoint']}\n\n"
                                 f"{(table_dir / 'table.md').read_text()}", key="evaluate-table")

    try:
        table = evaluate_task([videos, *(baselines or [])], str(table_dir), eval_config)
    except UnreviewedExamples:  # the table was written: publish it, then fail the flow
        publish()
        raise
    publish()
    return table
