"""The classical CPU estimator: two-view models on exact tracks, and trajectories on synthetic clips."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from schemas.cameras import intrinsics_from_hfov, is_orthonormal, rotation_angle_deg
from schemas.config import GeometryConfig, SyntheticConfig
from tasks.geometry.backends import make_geometry_backend
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
    assert rotation_angle_deg(pose[:3, :3], rot) < 0.01  # measured 0.002 deg
    np.testing.assert_allclose(pose[:3, 3], 0.0)


def test_parallax_uses_the_essential_matrix() -> None:
    p1, p2, rot = _two_views(2.0, (0.3, 0.0, 0.0))
    pose, model, _ = ClassicalBackend(GeometryConfig())._relative_pose(p1, p2, K)
    assert model == "essential"
    assert rotation_angle_deg(pose[:3, :3], rot) < 0.4  # measured 0.28 deg (0.3 px noise, 2 deg, 300 points)
    direction = pose[:3, 3] / np.linalg.norm(pose[:3, 3])
    assert direction @ np.array([1.0, 0.0, 0.0]) > 0.999  # X_2 = R X_1 + t: t points along +x (measured 0.9999)


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


# Measured (median / max per-step relative rotation error, end rotation error, degrees):
# pan 0.019 / 0.52 / 1.86, pan_return 0.013 / 0.15 / 0.033, static 0.0006 / 0.003 / 0.002. Bounds: a modest margin.
TOLERANCE_DEG = {"pan": (0.1, 1.0, 2.5), "pan_return": (0.1, 0.5, 0.2), "static": (0.005, 0.02, 0.01)}


@pytest.mark.parametrize("trajectory", ["pan", "pan_return", "static"])
def test_synthetic_rotation_errors_near_measured(synthetic_clips: dict, trajectory: str) -> None:
    clip = synthetic_clips[trajectory]
    est = ClassicalBackend(GeometryConfig()).estimate(clip.frames)
    n = len(clip.frames)
    assert est.camera_c2w.shape == (n, 4, 4) and est.camera_c2w.dtype == np.float32
    assert est.intrinsics.shape == (n, 3, 3) and est.depth is None
    np.testing.assert_allclose(est.camera_c2w[0], np.eye(4), atol=1e-6)
    assert is_orthonormal(est.camera_c2w[:, :3, :3], tol=1e-4)
    median_tol, max_tol, end_tol = TOLERANCE_DEG[trajectory]
    rre = relative_rotation_errors(est.camera_c2w, clip.camera_c2w)
    assert float(np.median(rre)) < median_tol and float(np.max(rre)) < max_tol, (np.median(rre), np.max(rre))
    assert est.ok, est.reason
    # the whole path, not only the steps: the end rotation
    assert rotation_angle_deg(est.camera_c2w[-1, :3, :3], clip.camera_c2w[-1, :3, :3]) < end_tol


def _static_camera_large_subject(n: int = 24) -> tuple[np.ndarray, np.ndarray]:
    """A static camera on a faintly textured wall; a large, high-contrast card (about 30% of the frame) slides and
    turns, so most strong corners are on the card."""
    rng = np.random.default_rng(7)
    texture = cv2.resize(rng.integers(0, 255, (60, 104, 3), dtype=np.uint8), (832, 480), interpolation=cv2.INTER_CUBIC)
    wall = (100 + 0.25 * texture).astype(np.uint8)
    card = cv2.resize(rng.integers(0, 255, (30, 40, 3), dtype=np.uint8), (400, 300), interpolation=cv2.INTER_CUBIC)
    frames, masks = [], []
    for i in range(n):
        frame = wall.copy()
        rot = cv2.getRotationMatrix2D((200, 150), 1.5 * i, 1.0)
        rot[:, 2] += (120 + 12 * i, 90 + 3 * i)
        warped = cv2.warpAffine(card, rot, (832, 480))
        inside = cv2.warpAffine(np.ones((300, 400), np.uint8), rot, (832, 480)).astype(bool)
        frame[inside] = warped[inside]
        frames.append(frame)
        masks.append(cv2.resize(inside.astype(np.uint8), (208, 120), interpolation=cv2.INTER_NEAREST).astype(bool))
    return np.stack(frames), np.stack(masks)


def test_dynamic_mask_keeps_a_static_camera_static() -> None:
    frames, masks = _static_camera_large_subject()
    backend = ClassicalBackend(GeometryConfig())
    fooled = backend.estimate(frames)
    est = backend.estimate(frames, dynamic=masks)
    angles = rotation_angle_deg(est.camera_c2w[:1, :3, :3], est.camera_c2w[:, :3, :3])
    assert est.quality["dynamic_masked"] == 1.0 and float(np.max(angles)) < 1.0
    moved = rotation_angle_deg(fooled.camera_c2w[:1, :3, :3], fooled.camera_c2w[:, :3, :3])
    assert float(np.max(moved)) > 10.0  # without the mask the card drags the camera along (measured 40 deg)
    union = backend.estimate(frames, dynamic=masks.any(axis=0))  # one union mask works too
    assert float(np.max(rotation_angle_deg(union.camera_c2w[:1, :3, :3], union.camera_c2w[:, :3, :3]))) < 1.0


def test_geometry_failure_keeps_the_window_without_cameras() -> None:
    from schemas.config import Config
    from tasks.cameras import CAMERA_KINDS, estimate_cameras
    from tasks.records import SourceItem, Window
    from tasks.clip import Clip

    flat = np.full((12, 240, 416, 3), 128, np.uint8)  # nothing to track: the estimator fails
    item = SourceItem("flat", "local", "flat.mp4")
    clip = Clip(item, windows=[Window(item=item, index=0, start_frame=0, frames=flat, span_s=(0.0, 12 / 16))])
    clip = estimate_cameras(clip, Config())
    assert not clip.outcomes and len(clip.windows) == 1
    window = clip.windows[0]
    assert window.geometry["known"] is False and window.geometry["reason"] == "geometry_low_confidence"
    assert window.geometry["excluded_interruptions"] == list(CAMERA_KINDS) and window.camera_c2w is None


def test_unknown_geometry_leaves_the_camera_families_out_of_the_draw() -> None:
    from schemas.config import Config
    from tasks.cameras import unknown_geometry
    from tasks.records import SourceItem, Window
    from tasks.samples import build_samples
    from tasks.clip import Clip

    rng = np.random.default_rng(3)
    frames = np.repeat(cv2.resize(rng.integers(0, 255, (30, 52, 3), dtype=np.uint8), (832, 480))[None], 81, axis=0)
    config = Config(augment={"mixture": {"camera_loop": 1.0, "light_toggle": 1.0}})
    kinds = {}
    for known in (True, False):
        item = SourceItem(f"geom-{known}", "local", "x.mp4")
        windows = [Window(item=item, index=i, start_frame=81 * i, frames=frames, span_s=(0.0, 5.0)) for i in range(6)]
        if not known:
            windows = [unknown_geometry(w, "geometry_low_confidence") for w in windows]
        clip = build_samples(Clip(item, windows=windows), config)
        kinds[known] = {w.augmented.params.get("fallback", {}).get("from", w.augmented.kind.value) for w in clip.windows}
    assert "camera_loop" in kinds[True]  # drawn (it may fall back when it cannot apply) ...
    assert kinds[False] == {"light_toggle"}  # ... but never for a window without cameras


def _faint_wall_sweeping_subject(pan_px: float, amp: float = 0.02, n: int = 40) -> tuple[np.ndarray, np.ndarray]:
    """A large dark subject sweeps across a plain, faintly shaded wall: once what it covered is masked, the strips
    left hold too few corners for the tracker. The camera pans ``pan_px`` per frame (832-wide pixels)."""
    rng = np.random.default_rng(11)
    shade = cv2.resize(rng.integers(0, 255, (30, 52)).astype(np.float32), (1032, 480), interpolation=cv2.INTER_CUBIC)
    wall = 150 + amp * (shade - 128)
    frames, masks = [], []
    for i in range(n):
        frame = np.repeat(cv2.warpAffine(wall, np.float32([[1, 0, -100 - pan_px * i], [0, 1, 0]]), (832, 480))[..., None],
                          3, axis=2)
        inside = np.zeros((480, 832), bool)
        x = 60 + int(450 * i / (n - 1))
        inside[40:450, x:x + 300] = True
        frame[inside] = 30 + 20 * np.sin(i / 3.0)
        frames.append(np.clip(frame + rng.normal(0, 1.5, frame.shape), 0, 255).astype(np.uint8))
        masks.append(cv2.resize(inside.astype(np.uint8), (208, 120), interpolation=cv2.INTER_NEAREST).astype(bool))
    return np.stack(frames), np.stack(masks)


def test_too_few_background_tracks_still_background_is_static_a_pan_is_not() -> None:
    from schemas.config import Config
    from tasks.cameras import estimate_cameras
    from tasks.records import SourceItem, Window
    from tasks.clip import Clip

    backend = ClassicalBackend(GeometryConfig())
    frames, masks = _faint_wall_sweeping_subject(0.0)
    est = backend.estimate(frames, dynamic=masks)
    assert est.quality["track_count_mean"] < backend.min_tracks  # the tracker alone cannot tell
    assert est.ok and est.quality["static_background"] == 1.0 and est.quality["background_spread_deg"] < 0.5
    assert float(np.max(rotation_angle_deg(est.camera_c2w[:1, :3, :3], est.camera_c2w[:, :3, :3]))) < 1.0
    item = SourceItem("wall", "local", "wall.mp4")
    window = Window(item=item, index=0, start_frame=0, frames=frames, span_s=(0.0, 2.5))
    window.dynamic_masks = masks
    clip = estimate_cameras(Clip(item, windows=[window]), Config())
    assert clip.windows[0].geometry["known"] is True and clip.windows[0].geometry["method"] == "static_background"
    # The same wall panning about 2.4 degrees over the window, and a uniform wall that shows nothing: not static.
    for pan_px, amp in ((0.8, 0.02), (0.0, 0.0)):
        frames, masks = _faint_wall_sweeping_subject(pan_px, amp)
        est = backend.estimate(frames, dynamic=masks)
        assert est.quality.get("static_background") == 0.0 and not est.ok, (pan_px, amp, est.quality)
