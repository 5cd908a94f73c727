"""Photometric dynamics: light and weather measured as dynamics in their own right, beside geometric motion.

The motion stage aligns each compared frame pair for the camera (``tasks.prefilter.motion``) and hands the
aligned pair here. Two channels are measured, each with its own spatial and temporal occupancy:

- **light** (global and local illumination): per pair, the log-brightness ratio of the aligned frames is split
  into a global gain (robust median) and a smooth local field (normalised Gaussian smoothing, masked where the
  flow says things move), and summed into the illumination history ``T_k(x)`` relative to the first compared
  frame. A temporal median over three compared frames removes auto-exposure flicker (gain that goes up and
  comes back); what stays is a lasting change of light: a whole frame dimming (sunset), a light switched off,
  a lamp's pool of light disappearing, fog brightening the dark parts of a scene. Spatial occupancy: the part
  of the frame whose light changed by more than ``light_log_change``; temporal occupancy: the part of the
  window lit differently from its start or its end.
- **weather** (rain, snow, spray): fine, scattered changes that no smooth light field explains and that are
  larger than a one-pixel misregistration of the aligned frames would give (the camera is discounted). Spatial
  occupancy: the part of the frame such changes keep hitting; temporal occupancy: the part of frame pairs that
  have them.
- **texture** (foliage in wind, water ripples, rain on a surface: stochastic dynamics): dense, widespread,
  small-amplitude change of textured pixels that goes back and forth (brighter in some compared pairs, darker in
  others) by more than the noise floor (estimated per pair from flat, still pixels, where motion changes nothing
  and only sensor and coding noise remain) plus a quarter-pixel misregistration of the aligned frames. Leaves
  fluttering by less than a pixel do this over much of the frame; a near-static scene (a creeping camera, a
  screen recording) does not. Spatial occupancy: the part of the frame that flickers so; temporal occupancy: the
  part of frame pairs that have such changes.

Everything runs on the motion stage's small grey frames (about 120 rows), so it costs a few Gaussian blurs per pair.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

_LOG_OFFSET = 8.0  # grey levels added before log: darks are noisy, and black has no ratio
_CHANGE = 12.0  # grey levels a weather change must exceed (sensor noise and x264 ringing stay below)
_CONSISTENCY = 0.5  # a local light change: the ratio's spread around it below this share of its size ...
_RATIO_NOISE = 0.03  # ... plus this (log units: sensor and coding noise)
_MISREGISTRATION_PX = 1.0  # alignment error tolerated: a change below slope * this is an edge sliding
_TEXTURE_GRADIENT = 40.0  # Sobel 3x3 magnitude above which a pixel is textured
_FLAT_GRADIENT = 20.0  # ... below which it is flat (its change is noise, whatever moves)
_TEXTURE_NOISE_MIN = 3.0  # grey levels: the texture floor never goes below this (duplicated frames read 0 noise)
_TEXTURE_NOISE_FACTOR = 4.0  # ... and is this many times the median change of flat, still pixels
_TEXTURE_MISREGISTRATION_PX = 0.25  # sub-pixel alignment error tolerated on textured pixels
_TEXTURE_SIGN_SHARE = 0.1  # a flickering pixel changes both ways, each in at least this share of the pairs


@dataclass
class PhotometricStats:
    light_spatial_occupancy: float
    light_temporal_occupancy: float
    light_global_change: float  # largest lasting global brightness change, |log ratio|
    weather_spatial_occupancy: float
    weather_temporal_occupancy: float
    texture_spatial_occupancy: float
    texture_temporal_occupancy: float
    light_region: np.ndarray = field(repr=False)  # (h,w) bool
    weather_region: np.ndarray = field(repr=False)  # (h,w) bool
    texture_region: np.ndarray = field(repr=False)  # (h,w) bool


def _smooth(values: np.ndarray, weights: np.ndarray, sigma: float) -> np.ndarray:
    """Normalised convolution: a Gaussian average of ``values`` over the pixels with weight 1."""
    num = cv2.GaussianBlur(values * weights, (0, 0), sigma)
    den = cv2.GaussianBlur(weights, (0, 0), sigma)
    return num / np.maximum(den, 1e-3)


class PhotometricTracker:
    """Feed it each camera-aligned pair (``relight``, then ``scatter``), then read ``result``."""

    def __init__(self, shape: tuple[int, int], light_log_change: float, weather_min_hits: float) -> None:
        h, w = shape
        self.shape = shape
        self.sigma = max(2.0, h / 16.0)
        self.light_log_change = light_log_change
        self.weather_min_hits = weather_min_hits
        self.history = [np.zeros(shape, np.float32)]  # T_k: log illumination change since the first frame
        self.weather_heat = np.zeros(shape, np.float32)
        self.weather_fraction: list[float] = []
        self.texture_up = np.zeros(shape, np.float32)  # pairs in which a textured pixel got brighter ...
        self.texture_down = np.zeros(shape, np.float32)  # ... and darker, beyond the floor
        self.texture_fraction: list[float] = []
        self.valid_ever = np.zeros(shape, bool)
        self.gains: list[float] = []

    def relight(self, prev: np.ndarray, cur: np.ndarray, valid: np.ndarray, moving: np.ndarray) -> np.ndarray:
        """``prev`` aligned to ``cur`` (grey uint8), ``valid`` where ``prev`` covers ``cur``, ``moving`` where the
        flow sees motion. Records this pair's light change and returns ``prev`` relit by it (float32), so that
        what still differs from ``cur`` is not light."""
        p, c = prev.astype(np.float32), cur.astype(np.float32)
        ratio = np.log(c + _LOG_OFFSET) - np.log(p + _LOG_OFFSET)
        still = valid & ~moving
        if still.sum() < 0.05 * still.size:
            still = valid
        gain = float(np.median(ratio[still])) if still.any() else 0.0
        rest, weight = (ratio - gain).astype(np.float32), still.astype(np.float32)
        local = _smooth(rest, weight, self.sigma)
        # Light is smooth: nearby pixels agree on the ratio. New content (text appearing, an edge sliding past
        # with parallax) gives ratios that disagree within the neighbourhood; that is not a change of light.
        spread = np.sqrt(np.maximum(_smooth(rest * rest, weight, self.sigma) - local * local, 0.0))
        local = np.where(spread < _CONSISTENCY * np.abs(local) + _RATIO_NOISE, local, 0.0)
        field_k = gain + local
        self.gains.append(gain)
        self.history.append(self.history[-1] + field_k.astype(np.float32))
        self.valid_ever |= valid
        return np.clip((p + _LOG_OFFSET) * np.exp(field_k) - _LOG_OFFSET, 0, 255)

    def scatter(self, relit: np.ndarray, cur: np.ndarray, valid: np.ndarray, coherent: np.ndarray) -> None:
        """Weather: changes the light field does not explain, larger than a small misregistration would give,
        outside the coherent moving region (``coherent``: the motion stage's opened mask of moving objects)."""
        c = cur.astype(np.float32)
        gradient = cv2.magnitude(cv2.Sobel(c, cv2.CV_32F, 1, 0, ksize=3), cv2.Sobel(c, cv2.CV_32F, 0, 1, ksize=3))
        residual = np.abs(c - relit)
        slack = _MISREGISTRATION_PX * gradient / 8.0  # Sobel 3x3 gives 8 x the slope
        scattered = (residual > _CHANGE + slack) & valid & ~coherent
        self.weather_heat += scattered
        self.weather_fraction.append(float(scattered.sum() / max(1, valid.sum())))
        self._texture(c - relit, gradient, valid & ~coherent)

    def _texture(self, signed: np.ndarray, gradient: np.ndarray, still: np.ndarray) -> None:
        """Temporal texture: textured pixels whose change beats the noise floor and a sub-pixel misregistration."""
        flat = still & (gradient < _FLAT_GRADIENT)
        noise = float(np.median(np.abs(signed[flat]))) if flat.sum() >= 100 else 0.0
        floor = max(_TEXTURE_NOISE_MIN, _TEXTURE_NOISE_FACTOR * noise) + _TEXTURE_MISREGISTRATION_PX * gradient / 8.0
        textured = still & (gradient > _TEXTURE_GRADIENT)
        up, down = (signed > floor) & textured, (signed < -floor) & textured
        self.texture_up += up
        self.texture_down += down
        self.texture_fraction.append(float((up | down).sum() / max(1, still.sum())))

    def result(self, frame_active_fraction: float) -> PhotometricStats:
        history = np.stack(self.history)  # (K+1,h,w)
        if len(history) >= 3:  # temporal median of 3: flicker (up and back down) is not a change of light
            padded = np.concatenate([history[:1], history, history[-1:]])
            history = np.median(np.stack([padded[:-2], padded[1:-1], padded[2:]]), axis=0)
        start, end = history[0], history[-1]
        changed = np.abs(history - start) > self.light_log_change  # (K+1,h,w)
        light_region = changed.any(axis=0) & self.valid_ever
        light_region = cv2.morphologyEx(light_region.astype(np.uint8), cv2.MORPH_OPEN,
                                        np.ones((3, 3), np.uint8)).astype(bool)
        if light_region.any():
            differs = (np.abs(history - start) > self.light_log_change) | (np.abs(history - end) > self.light_log_change)
            share = differs[:, light_region].mean(axis=1)
            light_temporal = float(np.mean(share > 0.5))
        else:
            light_temporal = 0.0
        gains = np.cumsum([0.0, *self.gains])
        if len(gains) >= 3:
            padded = np.r_[gains[0], gains, gains[-1]]
            gains = np.median(np.stack([padded[:-2], padded[1:-1], padded[2:]]), axis=0)
        pairs = max(1, len(self.weather_fraction))
        weather_region = self.weather_heat >= max(2.0, self.weather_min_hits * pairs)
        weather_region = cv2.morphologyEx(weather_region.astype(np.uint8), cv2.MORPH_CLOSE,
                                          np.ones((5, 5), np.uint8)).astype(bool)
        flicker = ((self.texture_up >= _TEXTURE_SIGN_SHARE * pairs) & (self.texture_down >= _TEXTURE_SIGN_SHARE * pairs)
                   & (self.texture_up + self.texture_down >= 2))
        return PhotometricStats(
            light_spatial_occupancy=float(light_region.mean()),
            light_temporal_occupancy=light_temporal,
            light_global_change=float(np.abs(gains - gains[0]).max()) if len(gains) else 0.0,
            weather_spatial_occupancy=float(weather_region.mean()),
            weather_temporal_occupancy=float(np.mean([f > frame_active_fraction for f in self.weather_fraction]))
            if self.weather_fraction else 0.0,
            texture_spatial_occupancy=float(flicker.mean()),
            texture_temporal_occupancy=float(np.mean([f > frame_active_fraction for f in self.texture_fraction]))
            if self.texture_fraction else 0.0,
            light_region=light_region, weather_region=weather_region, texture_region=flicker)
