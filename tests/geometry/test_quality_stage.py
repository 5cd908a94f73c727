"""Quality gates on crafted estimates, pose interpolation, and the stage's routing of windows."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from schemas.cameras import intrinsics_from_hfov, rotation_angle_deg
from schemas.config import GeometryConfig
from tasks.geometry.base import GeometryEstimate
from tasks.geometry.classical import ClassicalBackend
from tasks.geometry.interpolate import interpolate_linear, interpolate_poses, key_frame_indices, nearest_key
from tasks.geometry.quality import REASONS, apply_quality_gates, trajectory_steps
from tasks.geometry.stage import estimate_geometry
from tasks.records import GroundTruth, SourceItem, Window

N = 10


def _yaw(deg: float) -> np.ndarray:
    return cv2.Rodrigues(np.array([0.0, np.deg2rad(deg), 0.0]))[0]


def _smooth_estimate(with_depth: bool = True) -> GeometryEstimate:
    c2w = np.tile(np.eye(4), (N, 1, 1))
    for i in range(N):
        c2w[i, :3, :3] = _yaw(2.0 * i)
        c2w[i, :3, 3] = [0.1 * i, 0.0, 0.0]
    k = np.tile(intrinsics_from_hfov(60, 480, 832), (N, 1, 1))
    depth = np.ones((N, 120, 208), np.float32) if with_depth else None
    conf = np.full((N, 120, 208), 2.0, np.float32) if with_depth else None
    quality = {"confidence_mean": 2.0} if with_depth else {}
    return GeometryEstimate.from_raw(c2w, k, "test", depth=depth, depth_conf=conf, quality=quality)


def test_smooth_trajectory_passes_and_is_scored() -> None:
    est = apply_quality_gates(_smooth_estimate(), GeometryConfig())
    assert est.ok and est.reason is None
    assert est.quality["max_rotation_step_deg"] == pytest.approx(2.0)
    assert est.quality["max_translation_step"] == pytest.approx(0.1 / 0.9)


def test_nonfinite_gate() -> None:
    est = _smooth_estimate()
    est.depth[3, 5, 5] = np.nan
    assert apply_quality_gates(est, GeometryConfig()).reason == "geometry_nonfinite"
    est = _smooth_estimate()
    est.camera_c2w[4, 0, 3] = np.inf
    assert apply_quality_gates(est, GeometryConfig()).reason == "geometry_nonfinite"


def test_not_orthonormal_gate() -> None:
    est = _smooth_estimate()
    est.camera_c2w[5, :3, :3] *= 1.05
    assert apply_quality_gates(est, GeometryConfig()).reason == "geometry_not_orthonormal"


def test_low_confidence_gate() -> None:
    assert apply_quality_gates(_smooth_estimate(), GeometryConfig(min_confidence=3.0)).reason == "geometry_low_confidence"
    est = _smooth_estimate(with_depth=False)
    est.quality["untracked_fraction"] = 0.8
    assert apply_quality_gates(est, GeometryConfig()).reason == "geometry_low_confidence"


def test_implausible_rotation_and_translation_jumps() -> None:
    est = _smooth_estimate()
    est.camera_c2w[6:, :3, :3] = np.einsum("ij,njk->nik", _yaw(30.0), est.camera_c2w[6:, :3, :3])
    out = apply_quality_gates(est, GeometryConfig())
    assert out.reason == "geometry_implausible_jump" and out.quality["max_rotation_step_deg"] == pytest.approx(32.0)
    est = _smooth_estimate()
    est.camera_c2w[6:, 2, 3] += 5.0  # a teleport forward
    out = apply_quality_gates(est, GeometryConfig())
    assert out.reason == "geometry_implausible_jump" and out.quality["max_translation_step"] > 0.5


def test_every_reason_is_known() -> None:
    assert set(REASONS) == {"geometry_nonfinite", "geometry_not_orthonormal", "geometry_low_confidence",
                            "geometry_implausible_jump"}


def test_static_clip_skips_the_translation_gate() -> None:
    c2w = np.tile(np.eye(4), (N, 1, 1))
    c2w[5:, 0, 3] = 1e-9  # numerical noise, not a jump
    rot, trans, extent = trajectory_steps(c2w)
    assert extent < 1e-6
    est = GeometryEstimate.from_raw(c2w, np.tile(np.eye(3), (N, 1, 1)), "test")
    assert apply_quality_gates(est, GeometryConfig()).ok


def test_interpolation_reproduces_a_constant_velocity_path() -> None:
    n = 21
    truth = np.tile(np.eye(4), (n, 1, 1))
    for i in range(n):
        truth[i, :3, :3] = _yaw(1.5 * i) @ cv2.Rodrigues(np.array([np.deg2rad(0.5 * i), 0, 0]))[0]
        truth[i, :3, 3] = [0.2 * i, 0.0, -0.1 * i]
    keys = key_frame_indices(n, 5)
    np.testing.assert_array_equal(keys, [0, 5, 10, 15, 20])
    filled = interpolate_poses(truth[keys], keys, n)
    np.testing.assert_allclose(filled[keys], truth[keys], atol=1e-9)
    np.testing.assert_allclose(filled[:, :3, 3], truth[:, :3, 3], atol=1e-9)
    assert max(rotation_angle_deg(filled[i, :3, :3], truth[i, :3, :3]) for i in range(n)) < 0.05
    np.testing.assert_allclose(interpolate_linear(np.arange(5.0)[:, None], keys, n)[:, 0], np.arange(n) / 5)
    np.testing.assert_array_equal(nearest_key(keys, n)[[0, 2, 3, 7, 8, 20]], [0, 0, 1, 1, 2, 4])
    np.testing.assert_array_equal(key_frame_indices(n, 0), np.arange(n))


def _window(frames: np.ndarray, truth: GroundTruth | None = None) -> Window:
    item = SourceItem(clip_id="test-0001", source="local", uri="file:///dev/null")
    return Window(item=item, index=0, start_frame=0, frames=frames, span_s=(0.0, len(frames) / 16), truth=truth)


def test_stage_keeps_ground_truth_and_native_geometry() -> None:
    frames = np.zeros((N, 480, 832, 3), np.uint8)
    est = _smooth_estimate()
    truth = GroundTruth(camera_c2w=est.camera_c2w, intrinsics=est.intrinsics, depth=np.ones((N, 480, 832), np.float32))
    backend = ClassicalBackend(GeometryConfig())
    w = estimate_geometry(_window(frames, truth), backend)
    assert w.geometry["backend"] == "ground_truth" and w.geometry["known"] and w.geometry["ok"]
    assert w.geometry["translation_scale"] == pytest.approx(est.translation_scale)
    np.testing.assert_array_equal(w.camera_c2w, est.camera_c2w)
    native = _window(frames)
    native.camera_c2w, native.intrinsics = est.camera_c2w, est.intrinsics
    w = estimate_geometry(native, backend)
    assert w.geometry["backend"] == "native" and w.camera_c2w is est.camera_c2w
    w = estimate_geometry(_window(frames), None)
    assert w.geometry == {"backend": "none", "known": False} and w.camera_c2w is None


def test_stage_estimates_and_records() -> None:
    rng = np.random.default_rng(0)
    texture = cv2.resize(rng.integers(0, 255, (60, 104, 3), dtype=np.uint8), (832, 480), interpolation=cv2.INTER_CUBIC)
    frames = np.stack([np.roll(texture, 2 * i, axis=1) for i in range(N)])  # a slow horizontal scroll
    w = estimate_geometry(_window(frames), ClassicalBackend(GeometryConfig()))
    g = w.geometry
    assert g["backend"] == "classical" and g["known"] and g["ok"] and g["reason"] is None
    assert w.camera_c2w.shape == (N, 4, 4) and w.intrinsics.shape == (N, 3, 3) and w.depth is None
    assert len(g["translation_centre"]) == 3 and g["translation_scale"] > 0
    assert {"track_count_min", "max_rotation_step_deg"} <= set(g["quality"])
    # scrolling the image right by 2 px/frame = the camera turning left (negative yaw about +y)
    yaw = np.rad2deg(np.arctan2(w.camera_c2w[-1, 0, 2], w.camera_c2w[-1, 2, 2]))
    f = w.intrinsics[0, 0, 0]
    assert yaw == pytest.approx(-np.rad2deg(np.arctan(2 * (N - 1) / f)), abs=0.2)


def test_stage_records_backend_errors() -> None:
    w = estimate_geometry(_window(np.zeros((N, 480, 832), np.uint8)), ClassicalBackend(GeometryConfig()))
    assert w.geometry["ok"] is False and w.geometry["reason"] == "geometry_error" and "error" in w.geometry


def test_sporadic_classical_translation_is_not_a_jump() -> None:
    c2w = np.tile(np.eye(4), (N, 1, 1))
    c2w[5:, 0, 3] = 0.003  # one essential-matrix step in a rotation-only clip
    est = GeometryEstimate.from_raw(c2w, np.tile(np.eye(3), (N, 1, 1)), "classical",
                                    quality={"essential_fraction": 1 / (N - 1)})
    assert apply_quality_gates(est, GeometryConfig()).ok
    est.quality["essential_fraction"] = 0.9  # translations estimated throughout: the same step is a jump
    assert apply_quality_gates(est, GeometryConfig()).reason == "geometry_implausible_jump"
