"""A Ray actor pool for geometry: each actor loads its backend (the DA3 checkpoint) once and serves many windows."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import ray
from ray.util import ActorPool

from schemas.config import GeometryConfig
from tasks.geometry.base import GeometryEstimate
from tasks.records import Window


class _GeometryWorker:
    """Holds one backend; Ray wraps this class as an actor."""

    def __init__(self, config: dict) -> None:
        from tasks.geometry.base import make_geometry_backend

        backend = make_geometry_backend(GeometryConfig.model_validate(config))
        if backend is None:
            raise ValueError("geometry backend 'none' has nothing to run on Ray")
        self.backend = backend

    def estimate(self, frames: np.ndarray) -> GeometryEstimate:
        return self.backend.estimate(frames)


class GeometryActorPool:
    """``config.num_workers`` actors, each with ``config.num_gpus_per_worker`` GPUs and ``num_cpus`` CPUs.

    Ray must be initialised (``ray.init``) by the caller, or a local instance is started.
    """

    def __init__(self, config: GeometryConfig, num_cpus: float = 1.0) -> None:
        if not ray.is_initialized():
            ray.init(include_dashboard=False, log_to_driver=False)
        actor_cls = ray.remote(_GeometryWorker).options(num_cpus=num_cpus, num_gpus=config.num_gpus_per_worker)
        payload = config.model_dump(mode="json")
        self.actors = [actor_cls.remote(payload) for _ in range(config.num_workers)]
        self.pool = ActorPool(self.actors)

    def estimate(self, frames: Sequence[np.ndarray]) -> list[GeometryEstimate]:
        """Estimates for each frame stack, in input order."""
        return list(self.pool.map(lambda actor, f: actor.estimate.remote(f), list(frames)))

    def close(self) -> None:
        for actor in self.actors:
            ray.kill(actor)
        self.actors = []


def estimate_geometry_on_ray(windows: Sequence[Window], config: GeometryConfig,
                             num_cpus: float = 1.0) -> list[GeometryEstimate]:
    """Estimate every window's geometry on a fresh actor pool (closed afterwards); results in input order.

    Windows that already know their geometry are not filtered here; ``tasks.geometry.stage`` decides that.
    """
    pool = GeometryActorPool(config, num_cpus=num_cpus)
    try:
        return pool.estimate([w.frames for w in windows])
    finally:
        pool.close()
