"""Can a light go off in this scene? A measured cue that keeps "the lights go out" out of sunlit outdoor views.

A light toggle stands for a lamp or the room's lights switched off. That fits an indoor scene or a night scene
(street lights, lit windows), not a daylit outdoor view, where the light is the sun. The cue is measured on a few
frames of the window at a small size:

- ``sky``: bright, smooth pixels (blue-ish or the neutral white of an overcast sky) connected to the top edge;
- ``vegetation``: saturated green pixels (grass, foliage); a pastel or grey-green wall is not saturated enough;
- ``water``: saturated blue-cyan bright pixels anywhere (a pool, a lake under the sky);
- ``brightness``: mean luma in [0, 1]; a night view is dark overall;
- ``warmth``: mean red over mean blue, a colour-temperature proxy (tungsten light is warm, daylight and sky cool).

A scene is judged daylit outdoors when the natural share (sky + vegetation + water) is at least
``OUTDOOR_SHARE`` and it is not dark (``brightness`` at least ``NIGHT_BRIGHTNESS``). The share sits in the
middle (log scale) of the measured gap between the labelled indoor clips of tests/data/real and the synthetic rooms
(at most 0.066) and the labelled daylit outdoor clips (at least 0.152); tests/real/test_scene_light.py pins that
gap. No labelled dark night clip exists yet: the brightness guard is below every daylit clip (0.32 and up) but
not measured against one. An outdoor view with neither sky nor vegetation nor water (a street of cars) is not
recognised as outdoors by this cue.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import cv2
import numpy as np

OUTDOOR_SHARE = 0.1  # of the frame: sky, vegetation and open water together
NIGHT_BRIGHTNESS = 0.2  # mean luma below which a scene is a night (or dark) scene
_HEIGHT = 90  # rows the cue is measured at
_FRAMES = 5  # frames sampled evenly over the window


@dataclass(frozen=True)
class LightCue:
    sky: float
    vegetation: float
    water: float
    brightness: float
    warmth: float
    outdoor_daylight: bool

    @property
    def light_can_go_off(self) -> bool:
        return not self.outdoor_daylight

    def record(self) -> dict[str, float | bool | str]:
        """JSON-able, for the sample's meta."""
        out: dict[str, float | bool | str] = {k: (round(v, 4) if isinstance(v, float) else v)
                                              for k, v in asdict(self).items()}
        out["light_can_go_off"] = self.light_can_go_off
        out["judged_by"] = "measured"
        return out


def _frame_shares(rgb: np.ndarray) -> tuple[float, float, float, float, float]:
    width = max(16, round(rgb.shape[1] * _HEIGHT / rgb.shape[0]))
    small = cv2.resize(rgb, (width, _HEIGHT), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0
    r, g, b = small[..., 0], small[..., 1], small[..., 2]
    luma = 0.299 * r + 0.587 * g + 0.114 * b
    hi, lo = small.max(axis=-1), small.min(axis=-1)
    saturation = (hi - lo) / np.maximum(hi, 1e-3)
    grey = (luma * 255).astype(np.uint8)
    gradient = cv2.magnitude(cv2.Sobel(grey, cv2.CV_32F, 1, 0), cv2.Sobel(grey, cv2.CV_32F, 0, 1))
    smooth = cv2.GaussianBlur(gradient, (0, 0), 1.5) < 40.0
    sky_like = (luma > 0.65) & smooth & (b >= r)
    count, labels = cv2.connectedComponents(sky_like.astype(np.uint8), connectivity=8)
    top = set(np.unique(labels[0][sky_like[0]]).tolist())
    sky = np.isin(labels, list(top)) & sky_like if top else np.zeros_like(sky_like)
    # Grass and leaves in sun are vivid; under an overcast sky they are pale but textured (a pastel wall is smooth).
    textured = gradient > 20.0
    green = (g > 1.08 * r) & (g > 1.08 * b) & (luma > 0.08)
    vegetation = green & ((saturation > 0.45) | ((saturation > 0.25) & textured))
    # Grass and foliage cover areas: a pixel counts when most of its neighbourhood is green too (not colour noise).
    vegetation &= cv2.blur(vegetation.astype(np.float32), (5, 5)) > 0.6
    water = (b > 1.1 * r) & (g > 0.9 * r) & (saturation > 0.3) & (luma > 0.3) & smooth & ~sky
    warmth = float(r.mean() / max(float(b.mean()), 1e-3))
    return float(sky.mean()), float(vegetation.mean()), float(water.mean()), float(luma.mean()), warmth


def light_cue(frames: np.ndarray) -> LightCue:
    """The cue over ``_FRAMES`` frames spread over the window ((N,H,W,3) uint8 RGB)."""
    picks = np.linspace(0, len(frames) - 1, min(_FRAMES, len(frames))).round().astype(int)
    sky, vegetation, water, brightness, warmth = np.mean([_frame_shares(frames[i]) for i in picks], axis=0)
    outdoor = bool(sky + vegetation + water >= OUTDOOR_SHARE and brightness >= NIGHT_BRIGHTNESS)
    return LightCue(float(sky), float(vegetation), float(water), float(brightness), float(warmth), outdoor)
