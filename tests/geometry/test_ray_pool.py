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
from tasks.geometry.classical import ClassicalBackend
from tasks.geometry.da3 import build_tiny_da3
from tasks.geometry.ray_pool import GeometryActorPool, estimate_geometry_on_ray
from tasks.records import SourceItem, Window
from tasks.sources.synthetic import render_synthetic_clip
from tests.geometry.counting_da3 import count_loads, loads

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


def _windows(lengths: list[int]) -> list[Window]:
    """Windows of different lengths and content (clip i has its own seed): an output can be matched to its input
    by its shape, and a swapped pair of equal-length windows by its values."""
    out = []
    for i, n in enumerate(lengths):
        clip = render_synthetic_clip(1 + 5 * i, SyntheticConfig(), num_frames=n)
        item = SourceItem(clip_id=f"synthetic-{i}", source="synthetic", uri=f"synthetic://{i}")
        out.append(Window(item=item, index=0, start_frame=0, frames=clip.frames, span_s=(0.0, n / 16)))
    return out


@pytest.mark.timeout(300)
def test_classical_pool_returns_each_estimate_for_its_own_window_in_order(ray_local: None) -> None:
    # The first window is the longest: with two actors the later, shorter ones finish first, so an unordered
    # collection would come back shuffled.
    windows = _windows([17, 5, 9, 7])
    estimates = estimate_geometry_on_ray(windows, GeometryConfig(num_workers=2), num_cpus=0.5)
    assert [e.camera_c2w.shape[0] for e in estimates] == [len(w.frames) for w in windows]
    local = ClassicalBackend(GeometryConfig())
    for window, est in zip(windows, estimates):
        assert isinstance(est, GeometryEstimate) and est.backend == "classical"
        assert est.intrinsics.shape == (len(window.frames), 3, 3)
        np.testing.assert_allclose(est.camera_c2w[0], np.eye(4), atol=1e-6)
        # the estimate of THIS window: the same estimator run here on the same frames agrees
        np.testing.assert_allclose(est.camera_c2w, local.estimate(window.frames).camera_c2w, atol=1e-5)


@pytest.mark.timeout(300)
def test_da3_actor_loads_the_checkpoint_once_and_serves_many(ray_local: None, tmp_path: Path) -> None:
    model = build_tiny_da3(tmp_path / "tiny")
    log = count_loads(model, tmp_path / "loads.log")
    config = GeometryConfig(backend="da3", model=str(model), process_res=140, cross_check=False)
    pool = GeometryActorPool(config, num_cpus=0.5)
    try:
        windows = _windows([9, 5, 7])
        first = pool.estimate([w.frames for w in windows])
        second = pool.estimate([windows[0].frames])
        third = pool.estimate([windows[1].frames, windows[2].frames])
        assert [e.backend for e in first] == ["da3"] * 3 and first[0].depth is not None
        assert [e.camera_c2w.shape[0] for e in first] == [9, 5, 7]
        np.testing.assert_allclose(first[0].camera_c2w, second[0].camera_c2w, atol=1e-5)  # same loaded model
        np.testing.assert_allclose(first[2].depth, third[1].depth, atol=1e-5)
        pids = loads(log)
        assert len(pids) == 1, f"{len(pids)} loads for {len(windows) + 3} windows on one actor: {pids}"
        assert pids[0] != os.getpid()  # loaded in the actor, not in the driver
    finally:
        pool.close()
