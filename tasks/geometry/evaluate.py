"""Trajectory and depth error metrics against ground truth (both in the OpenCV camera-to-world convention).

- ATE: RMSE of camera centres after a Sim(3) Umeyama alignment of the estimate onto the truth (scale-free).
- RRE: per consecutive frame pair, the angle between the estimated and true relative rotations, in degrees.
- RTE (direction): per pair, the angle between relative translation directions (pairs that barely move skipped).
- Depth abs-rel after scaling the estimate by the ratio of medians (depth is only known up to scale).
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from schemas.cameras import invert_pose, rotation_angle_deg


def umeyama_sim3(src: np.ndarray, dst: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """Least-squares ``s, R, t`` with ``dst ~ s R src + t`` for point sets (N,3) (Umeyama 1991).

    When ``src`` has no spread (all centres equal, e.g. a pure rotation estimate) the best fit is ``s = 0``,
    ``t = mean(dst)``.
    """
    src = np.asarray(src, np.float64)
    dst = np.asarray(dst, np.float64)
    mu_s, mu_d = src.mean(0), dst.mean(0)
    xs, xd = src - mu_s, dst - mu_d
    var_s = float((xs ** 2).sum() / len(src))
    if var_s < 1e-12:
        return 0.0, np.eye(3), mu_d
    cov = xd.T @ xs / len(src)
    u, d, vt = np.linalg.svd(cov)
    sign = np.eye(3)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        sign[2, 2] = -1.0
    rot = u @ sign @ vt
    scale = float(np.trace(np.diag(d) @ sign) / var_s)
    return scale, rot, mu_d - scale * rot @ mu_s


def ate_rmse(c2w_est: np.ndarray, c2w_gt: np.ndarray) -> float:
    """RMSE (in ground-truth units) of camera centres after Sim(3)-aligning the estimate onto the truth."""
    est, gt = np.asarray(c2w_est)[:, :3, 3], np.asarray(c2w_gt)[:, :3, 3]
    s, rot, t = umeyama_sim3(est, gt)
    aligned = s * est @ rot.T + t
    return float(np.sqrt(((aligned - gt) ** 2).sum(1).mean()))


def _relative(c2w: np.ndarray) -> np.ndarray:
    """Relative poses between consecutive frames: ``inv(c2w_i) @ c2w_{i+1}`` (N-1,4,4)."""
    c2w = np.asarray(c2w, np.float64)
    return invert_pose(c2w[:-1]) @ c2w[1:]


def relative_rotation_errors(c2w_est: np.ndarray, c2w_gt: np.ndarray) -> np.ndarray:
    """Per consecutive pair, degrees between estimated and true relative rotations (N-1,)."""
    rel_e, rel_g = _relative(c2w_est), _relative(c2w_gt)
    return np.asarray(rotation_angle_deg(rel_e[:, :3, :3], rel_g[:, :3, :3])).reshape(-1)


def relative_translation_direction_errors(c2w_est: np.ndarray, c2w_gt: np.ndarray,
                                          min_step: float = 1e-6) -> np.ndarray:
    """Per consecutive pair, degrees between relative translation directions; pairs where either step is
    shorter than ``min_step`` are skipped (direction undefined)."""
    te, tg = _relative(c2w_est)[:, :3, 3], _relative(c2w_gt)[:, :3, 3]
    ne, ng = np.linalg.norm(te, axis=1), np.linalg.norm(tg, axis=1)
    keep = (ne > min_step) & (ng > min_step)
    if not keep.any():
        return np.zeros(0)
    cos = np.clip((te[keep] * tg[keep]).sum(1) / (ne[keep] * ng[keep]), -1.0, 1.0)
    return np.rad2deg(np.arccos(cos))


def depth_abs_rel(depth_est: np.ndarray, depth_gt: np.ndarray, min_depth: float = 1e-6) -> float:
    """Mean ``|s d - d*| / d*`` over valid true pixels, ``s = median(d*) / median(d)``; the estimate is resized
    (nearest) to the truth's resolution first."""
    est = np.asarray(depth_est, np.float32)
    gt = np.asarray(depth_gt, np.float32)
    if est.shape[-2:] != gt.shape[-2:]:
        est = np.stack([cv2.resize(d, (gt.shape[-1], gt.shape[-2]), interpolation=cv2.INTER_NEAREST) for d in est])
    valid = np.isfinite(gt) & (gt > min_depth) & np.isfinite(est) & (est > min_depth)
    if not valid.any():
        return float("nan")
    scale = np.median(gt[valid]) / np.median(est[valid])
    return float(np.mean(np.abs(scale * est[valid] - gt[valid]) / gt[valid]))


@dataclass(frozen=True)
class TrajectoryErrors:
    ate: float
    rre_median_deg: float
    rre_mean_deg: float
    rte_median_deg: float  # NaN when no pair moves in both trajectories


def trajectory_errors(c2w_est: np.ndarray, c2w_gt: np.ndarray) -> TrajectoryErrors:
    """All trajectory metrics for one clip."""
    rre = relative_rotation_errors(c2w_est, c2w_gt)
    rte = relative_translation_direction_errors(c2w_est, c2w_gt)
    return TrajectoryErrors(
        ate=ate_rmse(c2w_est, c2w_gt),
        rre_median_deg=float(np.median(rre)) if rre.size else 0.0,
        rre_mean_deg=float(np.mean(rre)) if rre.size else 0.0,
        rte_median_deg=float(np.median(rte)) if rte.size else float("nan"),
    )
