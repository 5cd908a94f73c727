"""Motion occupancy: how much of the frame moves or changes, and for how long (camera motion discounted).

Dense Farneback flow on small grey frames; a similarity transform fitted to the flow (RANSAC) stands for the
camera and is subtracted; pixels whose residual flow or photometric change (after warping by that transform)
is large count as dynamic. Photometric change catches what flow misses: light changes, filling liquids.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from schemas.config import Config, MotionConfig
from tasks.records import Window
from tasks.stage import Reject, per_window, stage_task

_PHOTOMETRIC_THRESHOLD = 12.0  # grey levels; above sensor noise and x264 ringing at crf ~23
_TEXTURE_GRADIENT = 40.0  # Sobel magnitude (grey levels) above which flow is well-posed


@dataclass
class MotionStats:
    spatial_occupancy: float  # fraction of the frame inside the dynamic region
    temporal_occupancy: float  # fraction of frame pairs with visible dynamics
    mean_active_fraction: float
    camera_motion_px: float  # mean global displacement per frame at full resolution
    region: np.ndarray  # (h,w) bool dynamic region
    box: tuple[int, int, int, int] | None  # x0,y0,x1,y1 at full resolution


def _grey_small(frames: np.ndarray, height: int) -> list[np.ndarray]:
    width = max(16, round(frames.shape[2] * height / frames.shape[1]))
    return [cv2.resize(cv2.cvtColor(f, cv2.COLOR_RGB2GRAY), (width, height), interpolation=cv2.INTER_AREA)
            for f in frames]


def _global_motion(prev: np.ndarray, cur: np.ndarray) -> np.ndarray:
    """Homography from tracked corners (pyramidal LK copes with fast pans), RANSAC: the camera's share."""
    corners = cv2.goodFeaturesToTrack(prev, maxCorners=300, qualityLevel=0.01, minDistance=5)
    if corners is None or len(corners) < 8:
        return np.eye(3)
    tracked, status, _ = cv2.calcOpticalFlowPyrLK(prev, cur, corners, None, winSize=(21, 21), maxLevel=4)
    good = status.ravel() == 1
    if good.sum() < 8:
        return np.eye(3)
    homography, _ = cv2.findHomography(corners[good], tracked[good], cv2.RANSAC, 1.5)
    return homography if homography is not None else np.eye(3)


def measure(frames: np.ndarray, config: MotionConfig) -> MotionStats:
    grey = _grey_small(frames, config.analysis_height)[:: config.frame_step]
    h, w = grey[0].shape
    heat = np.zeros((h, w), np.float32)
    active, camera = [], []
    kernel = np.ones((3, 3), np.uint8)
    ones = np.ones((h, w), np.uint8)
    centre = np.float32([[[w / 2, h / 2]]])
    for prev, cur in zip(grey, grey[1:]):
        homography = _global_motion(prev, cur) if config.discount_camera_motion else np.eye(3)
        camera.append(float(np.linalg.norm(cv2.perspectiveTransform(centre, homography) - centre)))
        # Align prev to cur first: what still moves or changes after that is the scene's own dynamics.
        warped = cv2.warpPerspective(prev, homography, (w, h), borderMode=cv2.BORDER_REPLICATE)
        valid = cv2.erode(cv2.warpPerspective(ones, homography, (w, h)), kernel, iterations=2).astype(bool)
        residual = np.linalg.norm(cv2.calcOpticalFlowFarneback(warped, cur, None, 0.5, 3, 13, 3, 5, 1.1, 0), axis=-1)
        change = cv2.absdiff(warped, cur).astype(np.float32)
        # Flow is only trusted where there is texture (flat areas suffer the aperture problem).
        gradient = cv2.magnitude(cv2.Sobel(cur, cv2.CV_32F, 1, 0), cv2.Sobel(cur, cv2.CV_32F, 0, 1))
        textured = cv2.dilate((gradient > _TEXTURE_GRADIENT).astype(np.uint8), kernel).astype(bool)
        moving = ((residual > config.pixel_threshold) & textured | (change > _PHOTOMETRIC_THRESHOLD)) & valid
        moving = cv2.morphologyEx(moving.astype(np.uint8), cv2.MORPH_OPEN, kernel)
        heat += moving
        active.append(float(moving.sum() / max(1, valid.sum())))
    pairs = max(1, len(grey) - 1)
    # Pixels that moved in a few frames, closed so a uniform object's interior joins its moving edges.
    region = (heat >= max(2.0, 0.03 * pairs)).astype(np.uint8)
    region = cv2.morphologyEx(region, cv2.MORPH_CLOSE, np.ones((7, 7), np.uint8))
    region = cv2.morphologyEx(region, cv2.MORPH_OPEN, kernel).astype(bool)
    box = None
    if region.any():
        rows, cols = np.nonzero(region)
        sx, sy = frames.shape[2] / w, frames.shape[1] / h
        box = (int(cols.min() * sx), int(rows.min() * sy), int((cols.max() + 1) * sx), int((rows.max() + 1) * sy))
    scale = frames.shape[1] / h
    return MotionStats(
        spatial_occupancy=float(region.mean()),
        temporal_occupancy=float(np.mean([a > config.frame_active_fraction for a in active])),
        mean_active_fraction=float(np.mean(active)),
        camera_motion_px=float(np.mean(camera) * scale / config.frame_step),
        region=region, box=box)


@per_window("measure-motion")
def _measure_window(window: Window, config: MotionConfig) -> Window:
    stats = measure(window.frames, config)
    scores = {"motion_spatial_occupancy": round(stats.spatial_occupancy, 4),
              "motion_temporal_occupancy": round(stats.temporal_occupancy, 4),
              "motion_active_fraction": round(stats.mean_active_fraction, 4),
              "camera_motion_px": round(stats.camera_motion_px, 3)}
    window.scores.update(scores)
    window.dynamic_mask, window.dynamic_box = stats.region, stats.box
    if stats.temporal_occupancy == 0.0 or stats.mean_active_fraction < config.frame_active_fraction / 4:
        raise Reject("static_scene", f"no visible dynamics (active fraction {stats.mean_active_fraction:.4f})")
    if stats.spatial_occupancy < config.min_spatial_occupancy:
        raise Reject("tiny_motion", f"dynamic region covers {stats.spatial_occupancy:.3f} of the frame "
                     f"(min {config.min_spatial_occupancy})")
    if stats.temporal_occupancy < config.min_temporal_occupancy:
        raise Reject("brief_motion", f"dynamics visible in {stats.temporal_occupancy:.2f} of frames "
                     f"(min {config.min_temporal_occupancy})")
    if stats.spatial_occupancy > config.max_spatial_occupancy:
        raise Reject("global_change", f"{stats.spatial_occupancy:.2f} of the frame changes: no localised event")
    return window


@stage_task("measure-motion")
def measure_motion(clip, config: Config):
    """Pre-filter: reject static scenery, tiny localised motion and brief flickers (thresholds from config)."""
    return _measure_window(clip, config.prefilter.motion)
