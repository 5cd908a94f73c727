"""The geometry actor pool on a local CPU Ray instance."""
from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import ray

from schemas.config import GeometryConfig, SyntheticConfig
from tasks.geometry.base import GeometryEstimate
from tasks.geometry.da3 import build_tiny_da3
from tasks.geometry.ray_pool import GeometryActorPool, estimate_geometry_on_ray
from tasks.records import SourceItem, Window
from tasks.sources.synthetic import render_synthetic_clip

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def ray_local(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    started = not ray.is_initialized()
    if started:
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, _temp_dir="/tmp/ray_geo",
                 runtime_env={"env_vars": {"PYTHONPATH": str(REPO), "DA3_LOG_LEVEL": "WARN"}})
    yield
    if started:
        ray.shutdown()


def _windows(count: int) -> list[Window]:
    out = []
    for i in range(count):
        clip = render_synthetic_clip(1 + 5 * i, SyntheticConfig(), num_frames=9)
        item = SourceItem(clip_id=f"synthetic-{i}", source="synthetic", uri=f"synthetic://{i}")
        out.append(Window(item=item, index=0, start_frame=0, frames=clip.frames, span_s=(0.0, 9 / 16)))
    return out


@pytest.mark.timeout(300)
def test_classical_pool_returns_estimates_in_order(ray_local: None) -> None:
    windows = _windows(3)
    estimates = estimate_geometry_on_ray(windows, GeometryConfig(num_workers=2), num_cpus=0.5)
    assert len(estimates) == 3 and all(isinstance(e, GeometryEstimate) for e in estimates)
    for window, est in zip(windows, estimates):
        assert est.backend == "classical" and est.camera_c2w.shape == (len(window.frames), 4, 4)
        np.testing.assert_allclose(est.camera_c2w[0], np.eye(4), atol=1e-6)
    assert not np.allclose(estimates[0].camera_c2w, estimates[1].camera_c2w)  # different clips, not duplicates


@pytest.mark.timeout(300)
def test_da3_actor_loads_once_and_serves_many(ray_local: None, tmp_path: Path) -> None:
    model = build_tiny_da3(tmp_path / "tiny")
    config = GeometryConfig(backend="da3", model=str(model), process_res=140, cross_check=False)
    pool = GeometryActorPool(config, num_cpus=0.5)
    try:
        windows = _windows(2)
        first = pool.estimate([w.frames for w in windows])
        second = pool.estimate([windows[0].frames])
        assert [e.backend for e in first] == ["da3", "da3"] and first[0].depth is not None
        np.testing.assert_allclose(first[0].camera_c2w, second[0].camera_c2w, atol=1e-5)  # same loaded model
    finally:
        pool.close()
