"""Stage: camera and depth per window (ground truth, native, DA3 or the classical estimator), quality-gated."""
from __future__ import annotations

import functools

from schemas.config import Config, GeometryConfig
from tasks.geometry.base import GeometryBackend, make_geometry_backend
from tasks.geometry.stage import estimate_geometry
from tasks.records import Window
from tasks.stage import Clip, Reject, Resources, per_window, stage_task

RESOURCES = Resources(cpus=1.0, gpus=1.0)  # DA3; the classical backend needs no GPU


@functools.lru_cache(maxsize=2)
def _backend(config_json: str) -> GeometryBackend | None:
    """Weights load once per worker process (keyed by the geometry config)."""
    return make_geometry_backend(GeometryConfig.model_validate_json(config_json))


@per_window("estimate-cameras")
def _cameras(window: Window, config: GeometryConfig) -> Window:
    window = estimate_geometry(window, _backend(config.model_dump_json()))
    record = window.geometry or {}
    window.scores.update({f"geometry_{k}": float(v) for k, v in (record.get("quality") or {}).items()})
    if record.get("reason") == "geometry_error":
        raise RuntimeError(record.get("error", "geometry backend failed"))
    if record.get("ok") is False:
        raise Reject(record.get("reason") or "geometry_rejected", "geometry quality gate")
    return window


@stage_task("estimate-cameras")
def estimate_cameras(clip: Clip, config: Config) -> Clip:
    return _cameras(clip, config.geometry)
