"""The DA3 backend on a tiny random-weight model built offline: loading, conventions, resolution mapping.

Random weights give meaningless values; these tests check shapes, finiteness and conventions only.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from depth_anything_3.api import DepthAnything3
from depth_anything_3.utils.io.input_processor import InputProcessor

from schemas.cameras import invert_pose, is_orthonormal, w2c_to_c2w
from schemas.config import GeometryConfig, SyntheticConfig
from schemas.constants import DEPTH_HEIGHT, DEPTH_WIDTH
from tasks.geometry.backends import make_geometry_backend
from tasks.geometry.da3 import DA3Backend, build_tiny_da3, da3_intrinsics_to_frame, da3_processed_geometry, load_da3
from tasks.sources.synthetic import render_synthetic_clip

RES = 140  # 480x832 -> 84x140: small enough for the CPU


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_da3(tmp_path_factory.mktemp("da3") / "tiny")


@pytest.fixture(scope="module")
def frames() -> np.ndarray:
    return render_synthetic_clip(1, SyntheticConfig(), num_frames=9).frames


def test_tiny_model_round_trips_through_from_pretrained(tiny_dir: Path) -> None:
    assert {"config.json", "model.safetensors"} <= {p.name for p in tiny_dir.iterdir()}
    loaded = load_da3(str(tiny_dir))  # registers the local architecture, then DepthAnything3.from_pretrained
    assert isinstance(loaded, DepthAnything3)
    again = DepthAnything3.from_pretrained(str(tiny_dir))
    params = sum(p.numel() for p in loaded.parameters())
    assert params < 1_000_000
    for (name, a), (_, b) in zip(loaded.state_dict().items(), again.state_dict().items()):
        assert torch.equal(a.cpu(), b.cpu()), name


@pytest.mark.parametrize("method", ["upper_bound_resize", "upper_bound_crop", "lower_bound_resize", "lower_bound_crop"])
@pytest.mark.parametrize("hw", [(480, 832), (1080, 1920), (719, 1283)])
def test_processed_geometry_matches_da3_input_processor(method: str, hw: tuple[int, int]) -> None:
    h, w = hw
    k0 = np.array([[700.0, 0, w / 2], [0, 650.0, h / 2], [0, 0, 1]], np.float32)  # DA3's pixel-corner convention
    image = np.zeros((h, w, 3), np.uint8)
    tensor, _, ks = InputProcessor()([image], None, k0[None], RES, method, num_workers=1)
    _, _, processed = da3_processed_geometry(hw, RES, method)
    assert tuple(tensor.shape[-2:]) == processed
    back = da3_intrinsics_to_frame(ks.numpy(), hw, RES, method)[0]
    expected = k0.astype(np.float64)
    expected[:2, 2] -= 0.5  # OpenCV's pixel-centre convention
    np.testing.assert_allclose(back, expected, rtol=1e-5, atol=1e-3)


def test_backend_output_is_anchored_opencv_in_frame_pixels(tiny_dir: Path, frames: np.ndarray) -> None:
    config = GeometryConfig(backend="da3", model=str(tiny_dir), process_res=RES, cross_check=False)
    backend = make_geometry_backend(config)
    assert isinstance(backend, DA3Backend)
    est = backend.estimate(frames)
    n = len(frames)
    assert est.backend == "da3"
    assert est.camera_c2w.shape == (n, 4, 4) and est.camera_c2w.dtype == np.float32
    assert est.intrinsics.shape == (n, 3, 3) and est.intrinsics.dtype == np.float32
    assert est.depth.shape == (n, DEPTH_HEIGHT, DEPTH_WIDTH) and est.depth_conf.shape == est.depth.shape
    for arr in (est.camera_c2w, est.intrinsics, est.depth, est.depth_conf):
        assert np.all(np.isfinite(arr))
    np.testing.assert_allclose(est.camera_c2w[0], np.eye(4), atol=1e-6)
    assert is_orthonormal(est.camera_c2w[:, :3, :3], tol=1e-4)
    np.testing.assert_allclose(est.camera_c2w[:, 3], np.tile([0, 0, 0, 1], (n, 1)))
    # compare with the model's own output on the same frames: anchored inverse of its world-to-camera, and
    # its processed-pixel intrinsics scaled by 832/140 and 480/84
    pred = backend.model.inference(list(frames), process_res=RES)
    assert pred.depth.shape[-2:] == (84, 140)
    raw = w2c_to_c2w(pred.extrinsics)
    expected = invert_pose(raw[0]) @ raw
    np.testing.assert_allclose(est.camera_c2w, expected, atol=1e-4)
    np.testing.assert_allclose(est.intrinsics[:, 0, 0], pred.intrinsics[:, 0, 0] * 832 / 140, rtol=1e-5)
    np.testing.assert_allclose(est.intrinsics[:, 1, 1], pred.intrinsics[:, 1, 1] * 480 / 84, rtol=1e-5)
    np.testing.assert_allclose(est.intrinsics[:, 0, 2], 415.5, atol=1e-3)
    np.testing.assert_allclose(est.intrinsics[:, 1, 2], 239.5, atol=1e-3)
    assert {"confidence_mean", "confidence_min", "max_rotation_step_deg"} <= set(est.quality)


def test_backend_subset_frames_interpolates_with_cross_check(tiny_dir: Path, frames: np.ndarray) -> None:
    config = GeometryConfig(backend="da3", model=str(tiny_dir), process_res=RES, subset_frames=3, cross_check=True)
    est = DA3Backend(config).estimate(frames)
    n = len(frames)
    assert est.quality["key_frames"] == 3.0
    assert est.camera_c2w.shape == (n, 4, 4) and np.all(np.isfinite(est.camera_c2w))
    np.testing.assert_allclose(est.camera_c2w[0], np.eye(4), atol=1e-6)
    assert is_orthonormal(est.camera_c2w[:, :3, :3], tol=1e-4)
    assert est.depth.shape == (n, DEPTH_HEIGHT, DEPTH_WIDTH)
    np.testing.assert_array_equal(est.depth[1], est.depth[0])  # nearest key frame's depth (keys 0, 4, 8)
    np.testing.assert_array_equal(est.depth[3], est.depth[4])
    for key in ("cross_check_rotation_deg", "cross_check_hfov_deg", "cross_check_flag"):
        assert np.isfinite(est.quality[key])


def test_missing_model_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="geometry.model"):
        load_da3("")
