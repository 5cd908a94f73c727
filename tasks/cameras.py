"""Stage: camera and depth per window (ground truth, native, DA3 or the classical estimator), quality-gated.

Geometry never rejects a window. When the estimator fails on a window the earlier stages kept (an exception, or
a quality gate: too few tracks, an implausible jump), the window goes on without cameras:
``geometry = {"known": False, "reason": ..., "excluded_interruptions": [...]}`` and no camera arrays, and the
interruption families that need cameras (``CAMERA_KINDS``) are left out of its draw (``tasks.samples``).
Only the estimator's failure is recorded; the clip itself was judged by the pre-filter and the VLM.
"""
from __future__ import annotations

import functools

from schemas.config import Config, GeometryConfig
from tasks.geometry.backends import make_geometry_backend
from tasks.geometry.base import GeometryBackend
from tasks.geometry.stage import estimate_geometry
from tasks.records import Window
from engine.stage import ProcessingStage, Resources
from tasks.clip import Clip, per_window

RESOURCES = Resources(cpus=1.0, gpus=1.0)  # DA3; the classical backend needs no GPU
CAMERA_KINDS = ("camera_loop",)  # interruption families whose graph is defined by the camera's path


@functools.lru_cache(maxsize=2)
def _backend(config_json: str) -> GeometryBackend | None:
    """Weights load once per worker process (keyed by the geometry config)."""
    return make_geometry_backend(GeometryConfig.model_validate_json(config_json))


def unknown_geometry(window: Window, reason: str, error: str | None = None) -> Window:
    """Keep ``window`` without cameras, saying why and which interruption families it cannot take."""
    record = dict(window.geometry or {})
    record.update(known=False, ok=False, reason=reason, excluded_interruptions=list(CAMERA_KINDS))
    if error:
        record["error"] = error
    window.geometry = record
    window.camera_c2w = window.intrinsics = window.depth = window.depth_conf = None
    window.scores["geometry_known"] = 0.0
    return window


@per_window("estimate-cameras")
def _cameras(window: Window, config: GeometryConfig) -> Window:
    window = estimate_geometry(window, _backend(config.model_dump_json()))
    record = window.geometry or {}
    window.scores.update({f"geometry_{k}": float(v) for k, v in (record.get("quality") or {}).items()})
    if record.get("reason") == "geometry_error":
        return unknown_geometry(window, "geometry_error", record.get("error", "geometry backend failed"))
    if record.get("ok") is False:
        return unknown_geometry(window, record.get("reason") or "geometry_rejected")
    if (record.get("quality") or {}).get("static_background"):
        record["method"] = "static_background"  # too few tracks, but the background shown still: identity cameras
    return window


def estimate_cameras(clip: Clip, config: Config) -> Clip:
    return _cameras(clip, config.geometry)


class EstimateCameras(ProcessingStage[Clip, Clip]):
    name, input_type, output_type, resources = "estimate-cameras", Clip, Clip, RESOURCES

    @classmethod
    def resources_for(cls, config: Config) -> Resources:
        if config.geometry.backend == "da3":
            return Resources(cpus=1.0, gpus=config.geometry.num_gpus_per_worker)
        return Resources(cpus=1.0)

    @classmethod
    def workers_for(cls, config: Config) -> int:
        return config.geometry.num_workers

    def setup(self) -> None:
        _backend(self.config.geometry.model_dump_json())  # DA3 weights: once per worker

    def process(self, clip: Clip) -> Clip:
        return estimate_cameras(clip, self.config)
