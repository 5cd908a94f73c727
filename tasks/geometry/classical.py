"""Offline CPU camera estimation from OpenCV feature tracks (no weights, no depth).

Corners (``goodFeaturesToTrack``) are detected in a keyframe and tracked frame to frame with pyramidal LK
(forward-backward checked). Each frame's pose is estimated against its keyframe, not its predecessor, so
per-frame errors do not accumulate inside a keyframe span. For each keyframe -> frame pair:

- a rotation-only model (RANSAC homography for the inliers, then Kabsch on the bearing vectors) is fitted;
- if its median residual (the parallax left after derotation), or that of a general homography, is
  below ``parallax_px``, the step is a pure rotation (t = 0): a homography that explains the tracks also
  covers a wrongly assumed focal length and a dominant plane, where the essential matrix misleads; otherwise the essential matrix (``findEssentialMat`` + ``recoverPose``, RANSAC) gives
  rotation and translation direction, and the translation length is set to that residual parallax in
  normalised image units (a constant-depth proxy: monocular translation has no scale of its own).

Only the static scene tells where the camera went: given the motion stage's dynamic mask (per frame or one
union, at any resolution; per-frame masks are united), corners are detected outside it and a track that enters it
is dropped, so a large moving subject (a hand turning a cup in front of a static camera) cannot drag the camera
along. When what is left has too few corners the estimate fails its confidence gate (the window is kept without
cameras, ``tasks.cameras``) rather than follow the subject, unless the background is still: then weaker corners
of the background (detected on the window's temporal median, tracked from it to every frame, brightness
standardised on the background so auto-exposure does not break LK) must be seen in most frames and agree on a
position spread under half a degree; the cameras are then identity (``quality.static_background = 1``). A
textureless background shows nothing to track and a pan shows the spread: both stay unknown.

The focal length comes from ``config.assumed_hfov_deg`` (principal point at the centre). Frames with too few
tracks (textureless, dark) give identity steps; ``quality`` reports the track counts and how many steps
were untracked, rotation-only, or essential-matrix based.
"""
from __future__ import annotations

import time

import cv2
import numpy as np

from schemas.cameras import intrinsics_from_hfov, invert_pose, project_to_rotation, rotation_angle_deg
from schemas.config import GeometryConfig
from tasks.geometry.base import GeometryEstimate
from tasks.geometry.quality import apply_quality_gates

_LK = dict(winSize=(21, 21), maxLevel=3, criteria=(cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 30, 0.01))
_STILL_LK = dict(winSize=(31, 31), maxLevel=3, criteria=(cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 30, 0.01))
_STILL_MAX_DEG = 0.5  # the background's tracked position may spread this much over the window (a static camera)
_STILL_MIN_POINTS = 4  # a frame shows the background when this many of its points track forward and back


def _kabsch(b1: np.ndarray, b2: np.ndarray) -> np.ndarray:
    """Rotation R minimising sum |b2 - R b1|^2 for bearing vectors (n,3)."""
    u, _, vt = np.linalg.svd(b2.T @ b1)
    d = np.sign(np.linalg.det(u @ vt)) or 1.0
    return u @ np.diag([1.0, 1.0, d]) @ vt


class ClassicalBackend:
    """Feature-track camera estimator; see the module docstring. Stateless between calls."""

    name = "classical"

    def __init__(self, config: GeometryConfig, work_width: int = 416, max_corners: int = 300,
                 min_tracks: int = 12, parallax_px: float = 0.6, keyframe_max_rotation_deg: float = 12.0) -> None:
        self.config = config
        self.work_width = work_width
        self.max_corners = max_corners
        self.min_tracks = min_tracks
        self.parallax_px = parallax_px
        self.keyframe_max_rotation_deg = keyframe_max_rotation_deg

    # -- image preparation -------------------------------------------------------------------------------
    def _prepare(self, frames: np.ndarray) -> tuple[list[np.ndarray], np.ndarray]:
        """Grey frames at working resolution, contrast-standardised (light changes break LK otherwise), and
        a per-frame flag for frames with too little contrast to track."""
        n, h, w = frames.shape[:3]
        size = (self.work_width, int(round(h * self.work_width / w)))
        greys, flat = [], np.zeros(n, bool)
        for i, frame in enumerate(frames):
            g = cv2.resize(cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY), size, interpolation=cv2.INTER_AREA)
            mean, std = cv2.meanStdDev(g)
            std_v = float(std[0, 0])
            flat[i] = std_v < 2.0
            if not flat[i]:
                g = cv2.convertScaleAbs(g, alpha=40.0 / std_v, beta=128.0 - 40.0 * float(mean[0, 0]) / std_v)
            greys.append(g)
        return greys, flat

    def _detect(self, grey: np.ndarray, static: np.ndarray | None = None) -> np.ndarray:
        pts = cv2.goodFeaturesToTrack(grey, maxCorners=self.max_corners, qualityLevel=0.01, minDistance=8,
                                      blockSize=7, mask=None if static is None else static.astype(np.uint8))
        return np.zeros((0, 2), np.float32) if pts is None else pts.reshape(-1, 2).astype(np.float32)

    @staticmethod
    def _track(prev: np.ndarray, cur: np.ndarray, pts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """LK from prev to cur with a forward-backward check; returns new points and a keep mask."""
        if len(pts) == 0:
            return pts, np.zeros(0, bool)
        p0 = pts.reshape(-1, 1, 2)
        p1, st1, _ = cv2.calcOpticalFlowPyrLK(prev, cur, p0, None, **_LK)
        back, st2, _ = cv2.calcOpticalFlowPyrLK(cur, prev, p1, None, **_LK)
        fb = np.linalg.norm((back - p0).reshape(-1, 2), axis=1)
        h, w = cur.shape
        p1 = p1.reshape(-1, 2)
        inside = (p1[:, 0] >= 0) & (p1[:, 0] < w) & (p1[:, 1] >= 0) & (p1[:, 1] < h)
        keep = (st1.ravel() == 1) & (st2.ravel() == 1) & (fb < 1.0) & inside
        return p1, keep

    @staticmethod
    def _static_masks(dynamic: np.ndarray | None, n: int, size: tuple[int, int]) -> list[np.ndarray] | None:
        """Per frame, where the scene is static at working resolution (the dynamic mask dilated a little);
        None when no mask was given or the mask leaves too little to track (then every pixel is used)."""
        if dynamic is None:
            return None
        dynamic = np.asarray(dynamic, bool)
        if dynamic.ndim == 3:
            if len(dynamic) != n:
                raise ValueError(f"dynamic mask has {len(dynamic)} frames for {n} frames")
            # Per-frame masks miss a uniform subject's still interior and a slow arm; whatever moved at any
            # time in the window is not scene: track the camera on what never moved.
            dynamic = dynamic.any(axis=0)
        grown = cv2.dilate(cv2.resize(dynamic.astype(np.uint8), size, interpolation=cv2.INTER_NEAREST),
                           np.ones((9, 9), np.uint8))
        static = grown == 0
        if static.mean() < 0.05:
            return None
        return [static] * n

    def _still_background(self, frames: np.ndarray, static: np.ndarray, focal_px: float) -> dict[str, float]:
        """Does the background (``static``, working resolution) stay put? Returns quality entries; the camera
        is static when ``static_background`` is 1."""
        size = static.shape[::-1]

        def standardised(frame: np.ndarray) -> np.ndarray:
            g = cv2.GaussianBlur(cv2.resize(cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY), size,
                                            interpolation=cv2.INTER_AREA), (0, 0), 1.0).astype(np.float32)
            mu, sd = float(g[static].mean()), float(g[static].std()) + 1e-3
            return np.clip(128.0 + 40.0 * (g - mu) / sd, 0, 255).astype(np.uint8)

        greys = [standardised(f) for f in frames]
        median = np.median(np.stack(greys), axis=0).astype(np.uint8)
        inner = cv2.erode(static.astype(np.uint8), np.ones((7, 7), np.uint8))
        pts = cv2.goodFeaturesToTrack(median, maxCorners=200, qualityLevel=0.001, minDistance=6, blockSize=9,
                                      mask=inner)
        offsets = []
        for grey in greys if pts is not None else []:
            p1, st1, _ = cv2.calcOpticalFlowPyrLK(median, grey, pts, None, **_STILL_LK)
            back, st2, _ = cv2.calcOpticalFlowPyrLK(grey, median, p1, None, **_STILL_LK)
            ok = (st1.ravel() == 1) & (st2.ravel() == 1) & (np.linalg.norm((back - pts).reshape(-1, 2), axis=1) < 1.0)
            if ok.sum() >= _STILL_MIN_POINTS:
                offsets.append(np.median((p1 - pts).reshape(-1, 2)[ok], axis=0))
        seen = len(offsets) / len(greys)
        spread = float(np.linalg.norm(np.array(offsets)[:, None] - np.array(offsets)[None], axis=-1).max()) \
            if len(offsets) >= 2 else np.inf
        spread_deg = float(np.degrees(np.arctan(spread / focal_px)))
        still = seen >= 1.0 - self.config.max_untracked_fraction and spread_deg < _STILL_MAX_DEG
        return {"static_background": float(still), "background_seen_fraction": seen,
                "background_spread_deg": min(spread_deg, 90.0)}

    # -- two-view geometry --------------------------------------------------------------------------------
    def _relative_pose(self, p1: np.ndarray, p2: np.ndarray, K: np.ndarray) -> tuple[np.ndarray, str, int]:
        """Pose of frame 2 relative to frame 1, as ``T = [R|t]`` with ``X_2 = R X_1 + t`` (4x4), the model
        used ("rotation" | "essential") and the inlier count."""
        hom, mask = cv2.findHomography(p1, p2, cv2.RANSAC, 1.0)
        inl = mask.ravel().astype(bool) if mask is not None else np.ones(len(p1), bool)
        if hom is not None:
            mapped = np.c_[p1, np.ones(len(p1))] @ hom.T
            hom_residual = float(np.median(np.linalg.norm(mapped[:, :2] / mapped[:, 2:3] - p2, axis=1)))
        else:
            hom_residual = np.inf
        if inl.sum() < self.min_tracks // 2:
            inl = np.ones(len(p1), bool)
        k_inv = np.linalg.inv(K)
        b1 = np.c_[p1, np.ones(len(p1))] @ k_inv.T
        b2 = np.c_[p2, np.ones(len(p2))] @ k_inv.T
        b1 /= np.linalg.norm(b1, axis=1, keepdims=True)
        b2 /= np.linalg.norm(b2, axis=1, keepdims=True)
        rot = _kabsch(b1[inl], b2[inl])
        proj = (b1 @ rot.T) @ K.T
        residual = np.linalg.norm(proj[:, :2] / proj[:, 2:3] - p2, axis=1)
        parallax = float(np.median(residual))
        pose = np.eye(4)
        pose[:3, :3] = rot
        # A homography that explains the tracks means no usable parallax: a pure rotation, a wrongly assumed
        # focal length (K_a^-1 K R K^-1 K_a is a homography, not a rotation) or one dominant plane. The
        # essential matrix is degenerate or misleading there, so keep the rotation fit.
        if min(parallax, hom_residual) < self.parallax_px or len(p1) < 8:
            return pose, "rotation", int(inl.sum())
        e, emask = cv2.findEssentialMat(p1, p2, K, cv2.RANSAC, 0.999, 1.0)
        if e is None or e.shape != (3, 3):
            return pose, "rotation", int(inl.sum())
        n_good, r_e, t_e, emask = cv2.recoverPose(e, p1, p2, K, mask=emask)
        if n_good < self.min_tracks:
            return pose, "rotation", int(inl.sum())
        pose[:3, :3] = project_to_rotation(r_e)
        pose[:3, 3] = t_e.ravel() / max(np.linalg.norm(t_e), 1e-12) * parallax / K[0, 0]
        return pose, "essential", int(n_good)

    # -- the estimator ------------------------------------------------------------------------------------
    accepts_dynamic_mask = True

    def estimate(self, frames: np.ndarray, hfov: float | None = None,
                 dynamic: np.ndarray | None = None) -> GeometryEstimate:
        """frames (N,H,W,3) uint8 RGB -> camera-to-world poses anchored at frame 0 and intrinsics for ``hfov``
        degrees (default ``config.assumed_hfov_deg``). ``dynamic``: (N,h,w) or (h,w) bool, what moves (ignored
        for tracking)."""
        t0 = time.perf_counter()
        hfov = self.config.assumed_hfov_deg if hfov is None else hfov
        frames = np.asarray(frames)
        n, h, w = frames.shape[:3]
        greys, flat = self._prepare(frames)
        static = self._static_masks(dynamic, n, greys[0].shape[::-1])
        detect = (lambda i: self._detect(greys[i], None if static is None else static[i]))
        k_work = intrinsics_from_hfov(hfov, *greys[0].shape)
        c2w = np.tile(np.eye(4), (n, 1, 1))
        counts = np.zeros(max(n - 1, 1))
        models = {"rotation": 0, "essential": 0, "untracked": 0}
        kf = 0
        kf_pts = np.zeros((0, 2), np.float32) if flat[0] else detect(0)
        cur_pts = kf_pts.copy()
        kf_size = len(kf_pts)
        for i in range(1, n):
            if len(cur_pts) and not flat[i]:
                new_pts, keep = self._track(greys[i - 1], greys[i], cur_pts)
                if static is not None:  # a track that runs into the moving subject no longer sees the scene
                    x = np.clip(new_pts[:, 0].astype(int), 0, static[i].shape[1] - 1)
                    y = np.clip(new_pts[:, 1].astype(int), 0, static[i].shape[0] - 1)
                    keep &= static[i][y, x]
                kf_pts, cur_pts = kf_pts[keep], new_pts[keep]
            else:
                kf_pts = cur_pts = np.zeros((0, 2), np.float32)
            counts[i - 1] = len(cur_pts)
            if len(cur_pts) >= self.min_tracks:
                rel, model, _ = self._relative_pose(kf_pts, cur_pts, k_work)
                c2w[i] = c2w[kf] @ invert_pose(rel)
                models[model] += 1
            else:
                c2w[i] = c2w[i - 1]  # lost: identity step, and restart from this frame
                models["untracked"] += 1
            lost = len(cur_pts) < max(2 * self.min_tracks, 0.5 * kf_size)
            turned = rotation_angle_deg(c2w[kf, :3, :3], c2w[i, :3, :3]) > self.keyframe_max_rotation_deg
            if lost or turned:
                kf = i
                kf_pts = np.zeros((0, 2), np.float32) if flat[i] else detect(i)
                cur_pts = kf_pts.copy()
                kf_size = len(kf_pts)
        steps = max(n - 1, 1)
        quality = {
            "track_count_min": float(counts.min()),
            "track_count_mean": float(counts.mean()),
            "untracked_fraction": models["untracked"] / steps,
            "rotation_only_fraction": models["rotation"] / steps,
            "essential_fraction": models["essential"] / steps,
            "dynamic_masked": float(static is not None),
            "seconds": time.perf_counter() - t0,
        }
        k_full = intrinsics_from_hfov(hfov, h, w)
        estimate = apply_quality_gates(GeometryEstimate.from_raw(c2w, np.tile(k_full, (n, 1, 1)), self.name,
                                                                 quality=quality), self.config)
        if static is not None and estimate.reason == "geometry_low_confidence":
            # Too little background to track the camera: it may still be shown to stand still.
            still = self._still_background(frames, static[0], float(k_work[0, 0]))
            if still["static_background"]:
                quality.update(untracked_fraction=0.0, rotation_only_fraction=1.0, essential_fraction=0.0)
                estimate = apply_quality_gates(GeometryEstimate.from_raw(
                    np.tile(np.eye(4), (n, 1, 1)), np.tile(k_full, (n, 1, 1)), self.name, quality=quality), self.config)
            estimate.quality.update(still, seconds=time.perf_counter() - t0)
        return estimate
