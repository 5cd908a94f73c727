"""The configured camera/depth backend, built once per worker (tasks/cameras.py): classical or DA3 (tasks/geometry/).
Kept apart from tasks/geometry/base.py, which the backends import, so no module imports one that imports it."""
from __future__ import annotations

from schemas.config import GeometryConfig
from tasks.geometry.base import GeometryBackend


def make_geometry_backend(config: GeometryConfig) -> GeometryBackend | None:
    """The configured backend (None for ``backend: none``); DA3 loads its checkpoint here, once."""
    if config.backend == "none":
        return None
    if config.backend == "classical":
        from tasks.geometry.classical import ClassicalBackend

        return ClassicalBackend(config)
    if config.backend == "da3":
        from tasks.geometry.da3 import DA3Backend

        return DA3Backend(config)
    raise ValueError(f"unknown geometry backend {config.backend!r}")
