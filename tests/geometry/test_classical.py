"""The classical CPU estimator: two-view models on exact tracks, and trajectories on synthetic clips."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from schemas.cameras import intrinsics_from_hfov, is_orthonormal, rotation_angle_deg
from schemas.config import GeometryConfig, SyntheticConfig
from tasks.geometry.base import make_geometry_backend
from tasks.geometry.classical import ClassicalBackend
from tasks.geometry.evaluate import relative_rotation_errors
from tasks.sources.synthetic import clip_spec, render_synthetic_clip

K = intrinsics_from_hfov(60.0, 240, 416)


def _two_views(rot_deg: float, t: tuple[float, float, float], seed: int = 0) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    pts = np.c_[rng.uniform(-3, 3, 300), rng.uniform(-2, 2, 300), rng.uniform(3, 10, 300)]
    rot = cv2.Rodrigues(np.array([0.0, np.deg2rad(rot_deg), 0.0]))[0]

    def project(r: np.ndarray, tr: np.ndarray) -> np.ndarray:
        cam = pts @ r.T + tr
        pix = cam @ K.T
        return (pix[:, :2] / pix[:, 2:]).astype(np.float32)

    p1 = project(np.eye(3), np.zeros(3))
    p2 = project(rot, np.asarray(t, float)) + rng.normal(0, 0.3, (300, 2)).astype(np.float32)
    return p1, p2, rot


def test_pure_rotation_uses_the_rotation_model() -> None:
    p1, p2, rot = _two_views(5.0, (0, 0, 0))
    pose, model, _ = ClassicalBackend(GeometryConfig())._relative_pose(p1, p2, K)
    assert model == "rotation"
    assert rotation_angle_deg(pose[:3, :3], rot) < 0.05
    np.testing.assert_allclose(pose[:3, 3], 0.0)


def test_parallax_uses_the_essential_matrix() -> None:
    p1, p2, rot = _two_views(2.0, (0.3, 0.0, 0.0))
    pose, model, _ = ClassicalBackend(GeometryConfig())._relative_pose(p1, p2, K)
    assert model == "essential"
    assert rotation_angle_deg(pose[:3, :3], rot) < 0.5
    direction = pose[:3, 3] / np.linalg.norm(pose[:3, 3])
    assert direction @ np.array([1.0, 0.0, 0.0]) > 0.99  # X_2 = R X_1 + t: t points along +x


def test_textureless_frames_give_identity_and_are_rejected() -> None:
    frames = np.full((12, 480, 832, 3), 128, np.uint8)
    est = ClassicalBackend(GeometryConfig()).estimate(frames)
    np.testing.assert_allclose(est.camera_c2w, np.tile(np.eye(4), (12, 1, 1)))
    assert est.quality["track_count_min"] == 0 and est.quality["untracked_fraction"] == 1.0
    assert not est.ok and est.reason == "geometry_low_confidence"


def test_factory_builds_classical_and_none() -> None:
    assert isinstance(make_geometry_backend(GeometryConfig()), ClassicalBackend)
    assert make_geometry_backend(GeometryConfig(backend="none")) is None


def _first_index(trajectory: str, config: SyntheticConfig) -> int:
    return next(i for i in range(30) if clip_spec(i, config)[1] == trajectory)


@pytest.fixture(scope="module")
def synthetic_clips() -> dict[str, object]:
    config = SyntheticConfig()
    return {traj: render_synthetic_clip(_first_index(traj, config), config) for traj in ("pan", "pan_return", "static")}


@pytest.mark.parametrize("trajectory", ["pan", "pan_return", "static"])
def test_synthetic_relative_rotation_error_below_two_degrees(synthetic_clips: dict, trajectory: str) -> None:
    clip = synthetic_clips[trajectory]
    est = ClassicalBackend(GeometryConfig()).estimate(clip.frames)
    n = len(clip.frames)
    assert est.camera_c2w.shape == (n, 4, 4) and est.camera_c2w.dtype == np.float32
    assert est.intrinsics.shape == (n, 3, 3) and est.depth is None
    np.testing.assert_allclose(est.camera_c2w[0], np.eye(4), atol=1e-6)
    assert is_orthonormal(est.camera_c2w[:, :3, :3], tol=1e-4)
    rre = relative_rotation_errors(est.camera_c2w, clip.camera_c2w)
    assert float(np.median(rre)) < 2.0
    assert est.ok, est.reason
    # the whole path, not only the steps: the end rotation is right to a few degrees
    assert rotation_angle_deg(est.camera_c2w[-1, :3, :3], clip.camera_c2w[-1, :3, :3]) < 3.0
