"""The evaluation harness: zero error on ground truth, the expected error on known perturbations."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from schemas.cameras import anchor_to_first
from tasks.geometry.evaluate import (
    ate_rmse,
    depth_abs_rel,
    relative_rotation_errors,
    relative_translation_direction_errors,
    trajectory_errors,
    umeyama_sim3,
)


def _rot(axis: tuple[float, float, float], deg: float) -> np.ndarray:
    rvec = np.asarray(axis, np.float64) / np.linalg.norm(axis) * np.deg2rad(deg)
    return cv2.Rodrigues(rvec)[0]


def _orbit(n: int = 30) -> np.ndarray:
    """A camera circling and yawing: every pair rotates and translates."""
    out = np.tile(np.eye(4), (n, 1, 1))
    for i in range(n):
        a = 2 * np.pi * i / n * 0.5
        out[i, :3, :3] = _rot((0, 1, 0), np.rad2deg(a))
        out[i, :3, 3] = [2 * np.sin(a), 0.1 * i / n, 2 * (1 - np.cos(a))]
    return anchor_to_first(out)


def test_ground_truth_has_zero_error() -> None:
    gt = _orbit()
    err = trajectory_errors(gt, gt)
    assert err.ate == pytest.approx(0.0, abs=1e-9)
    assert err.rre_median_deg == pytest.approx(0.0, abs=1e-6) and err.rre_mean_deg == pytest.approx(0.0, abs=1e-6)
    assert err.rte_median_deg == pytest.approx(0.0, abs=1e-5)


def test_sim3_transformed_truth_has_zero_ate_and_rre() -> None:
    gt = _orbit()
    sim = np.eye(4)
    sim[:3, :3] = 3.7 * _rot((1, 1, 0), 40)
    sim[:3, 3] = [5, -2, 1]
    est = gt.copy()
    est[:, :3, 3] = gt[:, :3, 3] @ sim[:3, :3].T + sim[:3, 3]
    est[:, :3, :3] = _rot((1, 1, 0), 40) @ gt[:, :3, :3]  # a rigid change of world frame
    assert ate_rmse(est, gt) == pytest.approx(0.0, abs=1e-9)
    np.testing.assert_allclose(relative_rotation_errors(est, gt), 0.0, atol=1e-6)
    np.testing.assert_allclose(relative_translation_direction_errors(est, gt), 0.0, atol=1e-4)


def test_umeyama_recovers_a_known_similarity() -> None:
    rng = np.random.default_rng(0)
    src = rng.normal(size=(50, 3))
    rot = _rot((0.3, -1, 0.2), 70)
    dst = 0.5 * src @ rot.T + [1, 2, 3]
    s, r, t = umeyama_sim3(src, dst)
    assert s == pytest.approx(0.5) and np.allclose(r, rot) and np.allclose(t, [1, 2, 3])


def test_ate_with_noise_is_the_noise_rms() -> None:
    gt = _orbit(200)
    rng = np.random.default_rng(1)
    noise = rng.normal(scale=0.01, size=(200, 3))
    est = gt.copy()
    est[:, :3, 3] = 2.0 * (gt[:, :3, 3] + noise) + 7.0  # known Sim3 (scale 2, shift 7) plus noise
    expected = np.sqrt(((noise - noise.mean(0)) ** 2).sum(1).mean())  # in truth units; the mean is absorbed
    assert ate_rmse(est, gt) == pytest.approx(expected, rel=0.05)


def test_rre_with_known_rotation_noise() -> None:
    gt = _orbit(40)
    est = gt.copy()
    # perturb every odd frame by 2 degrees about a fixed axis: each consecutive pair then differs by 2 degrees
    for i in range(1, 40, 2):
        est[i, :3, :3] = gt[i, :3, :3] @ _rot((1, 0, 0), 2.0)
    rre = relative_rotation_errors(est, gt)
    np.testing.assert_allclose(rre, 2.0, atol=1e-6)
    err = trajectory_errors(est, gt)
    assert err.rre_median_deg == pytest.approx(2.0) and err.rre_mean_deg == pytest.approx(2.0)


def test_translation_direction_error_skips_static_pairs() -> None:
    gt = np.tile(np.eye(4), (5, 1, 1))
    assert relative_translation_direction_errors(gt, gt).size == 0
    est = gt.copy()
    gt[:, 0, 3] = np.arange(5)  # moving along x
    est[:, 1, 3] = np.arange(5)  # estimate moves along y: 90 degrees off
    np.testing.assert_allclose(relative_translation_direction_errors(est, gt), 90.0)


def test_pure_rotation_estimate_ate_is_truth_spread() -> None:
    gt = _orbit()
    est = gt.copy()
    est[:, :3, 3] = 0.0  # no translation estimated at all
    spread = np.sqrt(((gt[:, :3, 3] - gt[:, :3, 3].mean(0)) ** 2).sum(1).mean())
    assert ate_rmse(est, gt) == pytest.approx(spread)


def test_depth_abs_rel_is_scale_free_and_measures_error() -> None:
    rng = np.random.default_rng(2)
    gt = rng.uniform(1.0, 10.0, size=(3, 60, 104)).astype(np.float32)
    assert depth_abs_rel(gt * 4.2, gt) == pytest.approx(0.0, abs=1e-6)
    noisy = gt * (1 + np.where(rng.random(gt.shape) < 0.5, 0.1, -0.1)).astype(np.float32)
    assert depth_abs_rel(noisy, gt) == pytest.approx(0.1, abs=0.01)
    blocky = np.repeat(np.repeat(gt[:, ::2, ::2], 2, axis=1), 2, axis=2)  # constant on 2x2 blocks
    small = 3.0 * blocky[:, ::2, ::2]
    assert depth_abs_rel(small, blocky) == pytest.approx(0.0, abs=1e-6)  # resized to the truth's grid first
