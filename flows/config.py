"""Loading a run's configuration, as a step of the flow (so a bad config fails the flow run where it starts)."""
from __future__ import annotations

from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE

from schemas.config import Config, load_config
from tasks.sources.cache import regenerate_config


def ray_overrides(ray_address: str | None) -> dict[str, Any] | None:
    """``ray_address`` turns Ray on: "auto", "ray://host:10001", or "local" (a Ray of this command's own)."""
    return {"ray": {"enabled": True, "address": "" if ray_address == "local" else ray_address}} if ray_address \
        else None


@task(name="load-config", cache_policy=NO_CACHE, persist_result=False)
def load_run_config(config_path: str | None, ray_address: str | None = None) -> Config:
    return load_config(config_path, ray_overrides(ray_address))


@task(name="load-regenerate-config", cache_policy=NO_CACHE, persist_result=False)
def load_regenerate_config(source_out: str, config_path: str | None, ray_address: str | None = None) -> Config:
    """The parent run's config with ``config_path`` merged over it (tasks/sources/cache.py)."""
    return regenerate_config(source_out, config_path, ray_overrides(ray_address))
