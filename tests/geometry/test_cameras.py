"""The shared camera conventions on hand-made poses."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from schemas.cameras import (
    anchor_to_first,
    centre_crop_box,
    hfov_deg,
    intrinsics_from_hfov,
    invert_pose,
    is_orthonormal,
    normalise_translations,
    normalised_intrinsics,
    project_to_rotation,
    rescale_intrinsics,
    rotation_angle_deg,
    uncrop_intrinsics,
    w2c_to_c2w,
)


def _rot(axis: tuple[float, float, float], deg: float) -> np.ndarray:
    rvec = np.asarray(axis, np.float64) / np.linalg.norm(axis) * np.deg2rad(deg)
    return cv2.Rodrigues(rvec)[0]


def _poses(n: int = 6, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    out = np.tile(np.eye(4), (n, 1, 1))
    for i in range(n):
        out[i, :3, :3] = _rot(tuple(rng.normal(size=3)), rng.uniform(0, 90))
        out[i, :3, 3] = rng.normal(size=3)
    return out


def test_w2c_to_c2w_is_the_inverse_for_3x4_and_4x4() -> None:
    c2w = _poses()
    w2c = np.linalg.inv(c2w)
    np.testing.assert_allclose(w2c_to_c2w(w2c), c2w, atol=1e-12)
    np.testing.assert_allclose(w2c_to_c2w(w2c[:, :3, :]), c2w, atol=1e-12)
    np.testing.assert_allclose(invert_pose(c2w) @ c2w, np.tile(np.eye(4), (len(c2w), 1, 1)), atol=1e-12)


def test_camera_centre_and_axes_follow_opencv() -> None:
    # a camera at (1,2,3) looking along world +x: its z (forward) axis is world +x, y (down) stays world +y
    c2w = np.eye(4)
    c2w[:3, :3] = np.array([[0, 0, 1], [0, 1, 0], [-1, 0, 0]], float)
    c2w[:3, 3] = [1, 2, 3]
    w2c = invert_pose(c2w)
    point_ahead = np.array([3.0, 2.0, 3.0, 1.0])  # 2 units along world +x from the camera
    np.testing.assert_allclose(w2c @ point_ahead, [0, 0, 2, 1], atol=1e-12)
    np.testing.assert_allclose(w2c_to_c2w(w2c[None])[0, :3, 3], [1, 2, 3], atol=1e-12)


def test_anchor_makes_frame0_identity_and_keeps_relative_poses() -> None:
    c2w = _poses(8, seed=1)
    anchored = anchor_to_first(c2w)
    np.testing.assert_allclose(anchored[0], np.eye(4), atol=1e-12)
    for i, j in [(0, 3), (2, 7), (5, 1)]:
        np.testing.assert_allclose(invert_pose(anchored[i]) @ anchored[j], invert_pose(c2w[i]) @ c2w[j], atol=1e-10)
    dist = np.linalg.norm(c2w[:, None, :3, 3] - c2w[None, :, :3, 3], axis=-1)
    dist_a = np.linalg.norm(anchored[:, None, :3, 3] - anchored[None, :, :3, 3], axis=-1)
    np.testing.assert_allclose(dist_a, dist, atol=1e-10)
    np.testing.assert_allclose(anchor_to_first(anchored), anchored, atol=1e-12)  # idempotent


def test_normalise_translations_centres_and_scales() -> None:
    c2w = np.tile(np.eye(4), (3, 1, 1))
    c2w[:, :3, 3] = [[0, 0, 0], [2, 0, 0], [4, 0, 0]]
    norm, centre, scale = normalise_translations(c2w)
    np.testing.assert_allclose(centre, [2, 0, 0])
    assert scale == pytest.approx(2.0)
    np.testing.assert_allclose(norm[:, :3, 3], [[-1, 0, 0], [0, 0, 0], [1, 0, 0]])
    np.testing.assert_allclose(norm[:, :3, :3], c2w[:, :3, :3])
    np.testing.assert_allclose(norm[:, :3, 3] * scale + centre, c2w[:, :3, 3])  # invertible


def test_normalise_translations_static_clip_has_unit_scale() -> None:
    c2w = np.tile(np.eye(4), (4, 1, 1))
    c2w[:, :3, :3] = [_rot((0, 1, 0), d) for d in (0, 5, 10, 15)]
    norm, centre, scale = normalise_translations(c2w)
    assert scale == 1.0
    np.testing.assert_allclose(centre, 0.0)
    np.testing.assert_allclose(norm, c2w)


def test_rescale_intrinsics_plain_resize() -> None:
    K = intrinsics_from_hfov(60.0, 480, 832)
    K2 = rescale_intrinsics(K, (480, 832), (240, 416))
    assert K2[0, 0] == pytest.approx(K[0, 0] / 2) and K2[1, 1] == pytest.approx(K[1, 1] / 2)
    assert (K2[0, 2], K2[1, 2]) == pytest.approx(((416 - 1) / 2, (240 - 1) / 2))  # centre stays the centre
    assert hfov_deg(K2, 416) == pytest.approx(60.0)
    back = rescale_intrinsics(K2, (240, 416), (480, 832))
    np.testing.assert_allclose(back, K, atol=1e-9)
    aniso = rescale_intrinsics(K, (480, 832), (294, 504))  # DA3's 504 processing size: sx != sy
    assert aniso[0, 0] == pytest.approx(K[0, 0] * 504 / 832) and aniso[1, 1] == pytest.approx(K[1, 1] * 294 / 480)


def test_rescale_intrinsics_resize_matches_cv2_resize() -> None:
    # a 4x4 pixel square centred on a projected point lands, after cv2.resize, where the rescaled K projects it
    K = np.array([[500.0, 0, 299.5], [0, 480.0, 199.5], [0, 0, 1]])
    point = np.array([0.2, -0.1, 1.0])
    u, v = (K @ point)[:2] / (K @ point)[2]  # (399.5, 151.5): the square covers pixels u-1.5 .. u+1.5
    img = np.zeros((480, 640), np.float32)
    img[int(v - 1.5):int(v + 2.5), int(u - 1.5):int(u + 2.5)] = 1.0
    small = cv2.resize(img, (320, 240), interpolation=cv2.INTER_AREA)
    K2 = rescale_intrinsics(K, (480, 640), (240, 320))
    u2, v2 = (K2 @ point)[:2] / (K2 @ point)[2]
    ys, xs = np.nonzero(small > 0)
    w = small[ys, xs]
    assert float((xs * w).sum() / w.sum()) == pytest.approx(u2, abs=1e-6)
    assert float((ys * w).sum() / w.sum()) == pytest.approx(v2, abs=1e-6)


def test_rescale_intrinsics_centre_crop_then_resize() -> None:
    K = intrinsics_from_hfov(90.0, 1080, 1920)
    crop = centre_crop_box((1080, 1920), (480, 832))
    top, left, h, w = crop
    assert (top, h) == (0, 1080) and w == round(1080 * 832 / 480) and left == (1920 - w) // 2
    K2 = rescale_intrinsics(K, (1080, 1920), (480, 832), crop=crop)
    assert K2[0, 0] == pytest.approx(K[0, 0] * 832 / w) and K2[1, 1] == pytest.approx(K[1, 1] * 480 / 1080)
    assert K2[0, 0] == pytest.approx(K2[1, 1], rel=1e-3)  # aspect-preserving: square pixels stay square
    # the crop centre is the image centre, so the principal point stays centred
    assert K2[0, 2] == pytest.approx((832 - 1) / 2, abs=0.3) and K2[1, 2] == pytest.approx((480 - 1) / 2, abs=1e-9)
    # a pixel of the source maps through the crop offset and scale
    x, y = 1000.0, 700.0
    ray = np.linalg.inv(K) @ [x, y, 1.0]
    u2, v2 = (K2 @ ray)[:2] / (K2 @ ray)[2]
    assert u2 == pytest.approx((x - left + 0.5) * 832 / w - 0.5) and v2 == pytest.approx((y + 0.5) * 480 / 1080 - 0.5)
    np.testing.assert_allclose(uncrop_intrinsics(K2, (480, 832), crop), K, atol=1e-9)


def test_normalised_intrinsics() -> None:
    K = np.array([[[400.0, 0, 416.0], [0, 300.0, 240.0], [0, 0, 1]]])
    np.testing.assert_allclose(normalised_intrinsics(K, 480, 832), [[400 / 832, 300 / 480, 0.5, 0.5]])


def test_rotation_angle_and_orthonormality() -> None:
    ra = _rot((1, 2, 3), 30)
    for deg in (1e-4, 0.5, 45.0, 179.0):
        assert rotation_angle_deg(ra, ra @ _rot((0, 1, 0), deg)) == pytest.approx(deg, rel=1e-6, abs=1e-9)
    batch = rotation_angle_deg(np.stack([ra, ra]), np.stack([ra, ra @ _rot((1, 0, 0), 10)]))
    np.testing.assert_allclose(batch, [0.0, 10.0], atol=1e-9)
    assert is_orthonormal(np.stack([ra, np.eye(3)]))
    assert not is_orthonormal(ra * 1.01)
    assert not is_orthonormal(np.diag([1.0, 1.0, -1.0]))  # a reflection is not a rotation
    assert not is_orthonormal(np.full((3, 3), np.nan))
    assert is_orthonormal(project_to_rotation(ra + 0.01))
