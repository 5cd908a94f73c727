"""Per-clip geometry quality scores and rejection gates.

Gates, checked in this order; the first that fails sets ``estimate.ok = False`` and ``estimate.reason``:

- ``geometry_nonfinite``: any NaN/inf in poses, intrinsics, depth or confidence.
- ``geometry_not_orthonormal``: a rotation block is not a proper rotation (tolerance 1e-3).
- ``geometry_low_confidence``: mean depth confidence below ``config.min_confidence`` (depth backends), or
  (classical) more than ``config.max_untracked_fraction`` of the frame steps lacked feature tracks.
- ``geometry_implausible_jump``: a consecutive-frame rotation above ``config.max_rotation_step_deg``, or a
  camera-centre step above ``config.max_translation_step`` times the clip's extent (largest distance between
  any two camera centres; the translation test is skipped when the clip does not translate, and for the
  classical backend when fewer than half of its steps estimated a translation).
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from schemas.cameras import hfov_deg, is_orthonormal, rotation_angle_deg
from schemas.config import GeometryConfig
from tasks.geometry.base import GeometryEstimate
from tasks.geometry.evaluate import relative_rotation_errors

if TYPE_CHECKING:
    from tasks.geometry.classical import ClassicalBackend

REASONS = ("geometry_nonfinite", "geometry_not_orthonormal", "geometry_low_confidence", "geometry_implausible_jump")
_STATIC_EXTENT = 1e-6


def trajectory_steps(c2w: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """Rotation steps (N-1,) in degrees, camera-centre steps (N-1,) and the clip extent (max pairwise distance)."""
    c2w = np.asarray(c2w, np.float64)
    if len(c2w) < 2:
        return np.zeros(0), np.zeros(0), 0.0
    rot = np.asarray(rotation_angle_deg(c2w[:-1, :3, :3], c2w[1:, :3, :3])).reshape(-1)
    centres = c2w[:, :3, 3]
    trans = np.linalg.norm(np.diff(centres, axis=0), axis=1)
    extent = float(np.linalg.norm(centres[:, None] - centres[None], axis=-1).max())
    return rot, trans, extent


def _finite(*arrays: np.ndarray | None) -> bool:
    return all(a is None or bool(np.all(np.isfinite(a))) for a in arrays)


def apply_quality_gates(estimate: GeometryEstimate, config: GeometryConfig) -> GeometryEstimate:
    """Add step scores to ``estimate.quality`` and set ``ok`` / ``reason`` from the gates (in place; returned)."""
    q = estimate.quality
    if not _finite(estimate.camera_c2w, estimate.intrinsics, estimate.depth, estimate.depth_conf):
        return _reject(estimate, "geometry_nonfinite")
    rot, trans, extent = trajectory_steps(estimate.camera_c2w)
    q["max_rotation_step_deg"] = float(rot.max()) if rot.size else 0.0
    q["translation_extent"] = extent
    q["max_translation_step"] = float(trans.max() / extent) if trans.size and extent > _STATIC_EXTENT else 0.0
    if not is_orthonormal(estimate.camera_c2w[:, :3, :3], tol=1e-3):
        return _reject(estimate, "geometry_not_orthonormal")
    if estimate.depth_conf is not None and q.get("confidence_mean", np.inf) < config.min_confidence:
        return _reject(estimate, "geometry_low_confidence")
    if q.get("untracked_fraction", 0.0) > config.max_untracked_fraction:
        return _reject(estimate, "geometry_low_confidence")
    # Classical translations exist only on essential-matrix steps (rotation-only steps have t = 0), so in a
    # mostly rotating clip one such step would look like a jump relative to the tiny extent.
    translation_known = q.get("essential_fraction", 1.0) >= 0.5
    jump = q["max_translation_step"] > config.max_translation_step and translation_known
    if q["max_rotation_step_deg"] > config.max_rotation_step_deg or jump:
        return _reject(estimate, "geometry_implausible_jump")
    estimate.ok, estimate.reason = True, None
    return estimate


def _reject(estimate: GeometryEstimate, reason: str) -> GeometryEstimate:
    estimate.ok, estimate.reason = False, reason
    return estimate


def cross_check(estimate: GeometryEstimate, classical: ClassicalBackend, frames: np.ndarray,
                config: GeometryConfig) -> GeometryEstimate:
    """Run the classical backend with the estimate's own field of view and record the median / max per-pair
    rotation disagreement (degrees); flag (``cross_check_flag = 1``) above ``config.cross_check_max_deg``.

    Informative only: the classical estimator fails on its own in scenes dominated by moving objects.
    """
    width = frames.shape[2]
    fov = float(np.clip(np.median([hfov_deg(k, width) for k in estimate.intrinsics]), 20.0, 120.0))
    other = classical.estimate(frames, hfov=fov)
    rre = relative_rotation_errors(estimate.camera_c2w, other.camera_c2w)
    q = estimate.quality
    q["cross_check_rotation_deg"] = float(np.median(rre)) if rre.size else 0.0
    q["cross_check_rotation_max_deg"] = float(rre.max()) if rre.size else 0.0
    q["cross_check_hfov_deg"] = fov
    q["cross_check_flag"] = float(q["cross_check_rotation_deg"] > config.cross_check_max_deg)
    return estimate
