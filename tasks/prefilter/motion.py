"""Dynamics occupancy: how much of the frame moves or changes, and for how long (camera motion discounted).

Frames ``frame_step`` apart are compared on small grey frames. A homography from tracked corners (RANSAC)
stands for the camera: the earlier frame is warped onto the later one first. Then three kinds of dynamics are
measured, each with its own spatial and temporal occupancy:

- geometric motion: residual dense flow (where there is texture) or a change that the light does not explain;
- light, weather and texture (``tasks.prefilter.photometric``): a lasting change of illumination, global or
  local, with auto-exposure flicker discounted; fine scattered changes such as rain or snow; dense sub-pixel
  flicker of textured pixels such as foliage in wind or water ripples.

A window passes when any of them is large and lasting enough; static scenery (nothing moves, the light holds)
does not, nor does a near-static view where only a small object drifts (``tasks.prefilter.scene_change``). The
per-frame dynamic masks (and their union) go on the window for the later stages.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from engine.stage import ProcessingStage, Resources
from schemas.config import Config, MotionConfig
from tasks.prefilter.photometric import PhotometricStats, PhotometricTracker
from tasks.prefilter.scene_change import dynamic_extent, lasting_change
from tasks.records import Window
from tasks.clip import Clip, Reject, per_window

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
    masks: np.ndarray | None = None  # (N,h,w) bool per input frame: what moves around that frame
    light: PhotometricStats | None = None
    lasting_change: float = 0.0  # fraction of the view changed from the first to the last frame (camera discounted)

    @property
    def dynamic_extent(self) -> float:
        return dynamic_extent(self.mean_active_fraction, self.lasting_change)


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


def _per_frame(pair_masks: list[np.ndarray], n: int, step: int, shape: tuple[int, int]) -> np.ndarray:
    """(n,h,w): frame i gets the masks of the compared pairs it lies in (pair k spans frames k*step..(k+1)*step)."""
    out = np.zeros((n, *shape), bool)
    if not pair_masks:
        return out
    last = len(pair_masks) - 1
    for i in range(n):
        lo, hi = min((i - 1) // step if i else 0, last), min(i // step, last)
        out[i] = pair_masks[max(lo, 0)] | pair_masks[hi]
    return out


def measure(frames: np.ndarray, config: MotionConfig) -> MotionStats:
    grey = _grey_small(frames, config.analysis_height)[:: config.frame_step]
    h, w = grey[0].shape
    heat = np.zeros((h, w), np.float32)
    active, camera, pair_masks = [], [], []
    kernel = np.ones((3, 3), np.uint8)
    ones = np.ones((h, w), np.uint8)
    centre = np.float32([[[w / 2, h / 2]]])
    light = PhotometricTracker((h, w), config.light_log_change, config.weather_min_hits)
    first_to_last = np.eye(3)
    for prev, cur in zip(grey, grey[1:]):
        homography = _global_motion(prev, cur) if config.discount_camera_motion else np.eye(3)
        first_to_last = homography @ first_to_last
        camera.append(float(np.linalg.norm(cv2.perspectiveTransform(centre, homography) - centre)))
        # Align prev to cur first: what still moves or changes after that is the scene's own dynamics.
        warped = cv2.warpPerspective(prev, homography, (w, h), borderMode=cv2.BORDER_REPLICATE)
        valid = cv2.erode(cv2.warpPerspective(ones, homography, (w, h)), kernel, iterations=2).astype(bool)
        residual = np.linalg.norm(cv2.calcOpticalFlowFarneback(warped, cur, None, 0.5, 3, 13, 3, 5, 1.1, 0), axis=-1)
        # Flow is only trusted where there is texture (flat areas suffer the aperture problem).
        gradient = cv2.magnitude(cv2.Sobel(cur, cv2.CV_32F, 1, 0), cv2.Sobel(cur, cv2.CV_32F, 0, 1))
        textured = cv2.dilate((gradient > _TEXTURE_GRADIENT).astype(np.uint8), kernel).astype(bool)
        flowing = (residual > config.pixel_threshold) & textured & valid
        # Relit by the pair's light change, so a dimming room or a lamp going off is not counted as motion here.
        relit = light.relight(warped, cur, valid, flowing)
        change = np.abs(relit - cur.astype(np.float32))
        moving = (flowing | (change > _PHOTOMETRIC_THRESHOLD)) & valid
        moving = cv2.morphologyEx(moving.astype(np.uint8), cv2.MORPH_OPEN, kernel)
        light.scatter(relit, cur, valid, moving.astype(bool))
        pair_masks.append(cv2.morphologyEx(moving, cv2.MORPH_CLOSE, np.ones((7, 7), np.uint8)).astype(bool))
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
        temporal_occupancy=float(np.mean([a > config.frame_active_fraction for a in active])) if active else 0.0,
        mean_active_fraction=float(np.mean(active)) if active else 0.0,
        camera_motion_px=float(np.mean(camera) * scale / config.frame_step) if camera else 0.0,
        region=region, box=box, masks=_per_frame(pair_masks, len(frames), config.frame_step, (h, w)),
        light=light.result(config.frame_active_fraction),
        lasting_change=lasting_change(grey[0], grey[-1], first_to_last) if len(grey) > 1 else 0.0)


def geometric_verdict(stats: MotionStats, config: MotionConfig) -> Reject | None:
    """Why geometric motion alone does not make the window (None when it does)."""
    if stats.temporal_occupancy == 0.0 or stats.mean_active_fraction < config.frame_active_fraction / 4:
        return Reject("static_scene", f"no visible dynamics (active fraction {stats.mean_active_fraction:.4f})")
    if stats.spatial_occupancy < config.min_spatial_occupancy:
        return Reject("tiny_motion", f"dynamic region covers {stats.spatial_occupancy:.3f} of the frame "
                      f"(min {config.min_spatial_occupancy})")
    if stats.dynamic_extent < config.min_dynamic_extent:
        return Reject("static_scene", f"near-static: {stats.mean_active_fraction:.3f} of the frame moves at a time "
                      f"and {stats.lasting_change:.3f} ends changed (min {config.min_dynamic_extent} either)")
    if stats.temporal_occupancy < config.min_temporal_occupancy:
        return Reject("brief_motion", f"dynamics visible in {stats.temporal_occupancy:.2f} of frames "
                      f"(min {config.min_temporal_occupancy})")
    if stats.spatial_occupancy > config.max_spatial_occupancy:
        return Reject("global_change", f"{stats.spatial_occupancy:.2f} of the frame changes: no localised event")
    return None


def photometric_channels(stats: MotionStats, config: MotionConfig) -> list[str]:
    """The photometric channels large and lasting enough to make the window on their own."""
    light, passing = stats.light, []
    if light is None:
        return passing
    if (light.light_spatial_occupancy >= config.min_light_spatial_occupancy
            and light.light_temporal_occupancy >= config.min_light_temporal_occupancy):
        passing.append("light")
    if (light.weather_spatial_occupancy >= config.min_weather_spatial_occupancy
            and light.weather_temporal_occupancy >= config.min_weather_temporal_occupancy):
        passing.append("weather")
    if (light.texture_spatial_occupancy >= config.min_texture_spatial_occupancy
            and light.texture_temporal_occupancy >= config.min_texture_temporal_occupancy):
        passing.append("texture")
    return passing


@per_window("measure-motion")
def _measure_window(window: Window, config: MotionConfig) -> Window:
    stats = measure(window.frames, config)
    scores = {"motion_spatial_occupancy": round(stats.spatial_occupancy, 4),
              "motion_temporal_occupancy": round(stats.temporal_occupancy, 4),
              "motion_active_fraction": round(stats.mean_active_fraction, 4),
              "camera_motion_px": round(stats.camera_motion_px, 3),
              "motion_lasting_change": round(stats.lasting_change, 4),
              "dynamic_extent": round(stats.dynamic_extent, 4)}
    if stats.light is not None:
        scores.update({"light_spatial_occupancy": round(stats.light.light_spatial_occupancy, 4),
                       "light_temporal_occupancy": round(stats.light.light_temporal_occupancy, 4),
                       "light_global_change": round(stats.light.light_global_change, 4),
                       "weather_spatial_occupancy": round(stats.light.weather_spatial_occupancy, 4),
                       "weather_temporal_occupancy": round(stats.light.weather_temporal_occupancy, 4),
                       "texture_spatial_occupancy": round(stats.light.texture_spatial_occupancy, 4),
                       "texture_temporal_occupancy": round(stats.light.texture_temporal_occupancy, 4)})
    window.scores.update(scores)
    window.dynamic_mask, window.dynamic_box, window.dynamic_masks = stats.region, stats.box, stats.masks
    geometric = geometric_verdict(stats, config)
    channels = [] if geometric else ["motion"]
    channels += photometric_channels(stats, config)
    window.scores.update({f"dynamics_{c}": 1.0 for c in ("motion", "light", "weather", "texture") if c in channels})
    if not channels:
        assert geometric is not None
        raise Reject(geometric.reason, geometric.detail, geometric.scores)  # a fresh one: no local refers to it
    return window


def measure_motion(clip: Clip, config: Config) -> Clip:
    """Pre-filter: reject static scenery, tiny localised motion and brief flickers, unless the light or the
    weather changes enough on its own (thresholds from config)."""
    return _measure_window(clip, config.prefilter.motion)


class MeasureMotion(ProcessingStage[Clip, Clip]):
    """Clip -> Clip without the windows whose motion does not make an event (``measure_motion``)."""

    name, input_type, output_type, resources = "measure-motion", Clip, Clip, Resources(cpus=1.0)

    @classmethod
    def enabled_for(cls, config: Config) -> bool:
        return config.prefilter.motion.enabled

    def process(self, clip: Clip) -> Clip:
        return measure_motion(clip, self.config)
