"""The generate flow: one Prefect task per mode around ``training.generate.run.generate``."""
from __future__ import annotations

from pathlib import Path

from prefect import flow, task
from prefect.cache_policies import NO_CACHE


@task(name="generate", cache_policy=NO_CACHE, persist_result=False)
def generate_task(checkpoint: str, shards: str, mode: str, out: str, config: str | None = None,
                  limit: int | None = None) -> dict:
    from training.generate.run import generate

    return generate(Path(checkpoint), Path(shards), mode, Path(out), Path(config) if config else None, limit)


@flow(name="generate", log_prints=True)
def generate_flow(checkpoint: str, shards: str, out: str = "out/generate", modes: list[str] | None = None,
                  config: str | None = None, limit: int | None = None) -> dict[str, dict]:
    """Videos of every mode in ``modes`` (default: all three) into ``out/<mode>``."""
    return {mode: generate_task(checkpoint, shards, mode, str(Path(out) / mode), config, limit)
            for mode in modes or ["i2v", "v2v", "reference"]}
