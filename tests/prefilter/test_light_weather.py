"""Light and weather are dynamics: they pass the default pre-filter on their own; static scenery does not.

Procedural clips of a static textured wall (81 frames): a slow global dim (sunset), a fast dim, a light switched
off, a local lamp switched off, rain streaks, snow, fog rolling in; and the negatives: the still wall with sensor
noise, with auto-exposure flicker, and filmed hand-held (the camera moves, nothing in the scene does).
"""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from schemas.config import Config
from tasks.decode import cut_windows
from tasks.prefilter.motion import measure_motion
from tasks.records import SourceItem
from tasks.clip import Clip

N, H, W = 81, 240, 416


def _wall(seed: int = 3) -> np.ndarray:
    rng = np.random.default_rng(seed)
    wall = cv2.resize((rng.random((12, 20, 3)) * 120 + 80).astype(np.uint8), (W + 40, H + 40),
                      interpolation=cv2.INTER_CUBIC)
    for _ in range(40):  # bricks, a frame, a socket: structure for the camera tracker
        x, y = int(rng.integers(0, W)), int(rng.integers(0, H))
        cv2.rectangle(wall, (x, y), (x + int(rng.integers(8, 40)), y + int(rng.integers(6, 30))),
                      tuple(int(c) for c in rng.integers(40, 230, 3)), 2)
    return wall


def _noisy(frames: np.ndarray, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.clip(frames + rng.normal(0, 2.0, frames.shape), 0, 255).astype(np.uint8)


def _static() -> np.ndarray:
    return np.repeat(_wall()[None, 20:20 + H, 20:20 + W].astype(np.float32), N, axis=0)


def _gain(gains: np.ndarray) -> np.ndarray:
    return _noisy(_static() * gains[:, None, None, None])


def _lamp_off() -> np.ndarray:
    yy, xx = np.mgrid[0:H, 0:W]
    pool = np.exp(-((xx - 0.7 * W) ** 2 + (yy - 0.35 * H) ** 2) / (2 * (0.15 * W) ** 2))[..., None]
    return _noisy(np.stack([f * (0.6 + (0.8 * pool if i < 40 else 0.0)) for i, f in enumerate(_static())]))


def _rain(seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    frames = _static() * 0.8
    for f in frames:
        for _ in range(260):
            x, y = int(rng.integers(0, W)), int(rng.integers(0, H))
            cv2.line(f, (x, y), (x + 3, y + 14), (235, 235, 240), 1)
    return _noisy(frames)


def _snow(seed: int = 2) -> np.ndarray:
    rng = np.random.default_rng(seed)
    flakes = np.c_[rng.uniform(0, W, 500), rng.uniform(0, H, 500)]
    frames = _static() * 0.85
    for f in frames:
        flakes += np.c_[rng.normal(0, 0.6, len(flakes)), rng.uniform(1.5, 3.5, len(flakes))]
        flakes[:, 1] %= H
        for x, y in flakes.astype(int):
            cv2.circle(f, (int(x), int(y)), 2, (250, 250, 250), -1)
    return _noisy(frames)


def _fog() -> np.ndarray:
    alpha = np.linspace(0.0, 0.7, N)[:, None, None, None]
    return _noisy(_static() * (1 - alpha) + 215.0 * alpha)


def _flicker(seed: int = 4) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return _gain(1.0 + rng.choice([-0.05, 0.0, 0.05], N))  # auto-exposure hunting around one level


def _handheld(seed: int = 5) -> np.ndarray:
    rng = np.random.default_rng(seed)
    wall = _wall().astype(np.float32)
    path = np.cumsum(rng.normal(0, 0.8, (N, 2)), axis=0).clip(-18, 18)
    return _noisy(np.stack([wall[20 + int(dy):20 + int(dy) + H, 20 + int(dx):20 + int(dx) + W] for dx, dy in path]))


def _foliage(seed: int = 6) -> np.ndarray:
    """Leaves in wind: fine texture whose small patches each sway by a fraction of a pixel, every frame anew."""
    rng = np.random.default_rng(seed)
    leaves = cv2.GaussianBlur((rng.random((H, W)) * 160 + 50).astype(np.float32), (0, 0), 1.0)
    leaves = np.dstack([leaves * 0.6, leaves, leaves * 0.5])
    yy, xx = np.mgrid[0:H, 0:W].astype(np.float32)
    frames = []
    for _ in range(N):
        dx, dy = (cv2.resize(rng.normal(0, 1.0, (H // 6, W // 6)).astype(np.float32), (W, H)) for _ in range(2))
        frames.append(cv2.remap(leaves, xx + dx, yy + dy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT))
    return _noisy(np.stack(frames))


CASES = {
    "sunset_slow_dim": (lambda: _gain(np.linspace(1.0, 0.45, N)), "accepted"),
    "fast_dim": (lambda: _gain(np.r_[np.ones(30), np.linspace(1.0, 0.4, 16), np.full(35, 0.4)]), "accepted"),
    "light_switched_off": (lambda: _gain(np.r_[np.ones(40), np.full(41, 0.35)]), "accepted"),
    "lamp_switched_off": (_lamp_off, "accepted"),
    "rain": (_rain, "accepted"),
    "snow": (_snow, "accepted"),
    "fog_rolling_in": (_fog, "accepted"),
    "foliage_in_wind": (_foliage, "accepted"),
    "static_wall": (lambda: _gain(np.ones(N)), "rejected"),
    "auto_exposure_flicker": (_flicker, "rejected"),
    "handheld_static_wall": (_handheld, "rejected"),
}


def _prefilter(frames: np.ndarray) -> Clip:
    # 240x416 frames: the motion stage measures at 120 rows whatever it is given
    clip = Clip(SourceItem("wall", "local", "wall.mp4"), frames=frames, cuts=[])
    return measure_motion(cut_windows(clip, Config()), Config())


@pytest.mark.parametrize("name", list(CASES))
def test_light_and_weather_pass_static_scenery_does_not(name: str) -> None:
    make, expected = CASES[name]
    clip = _prefilter(make())
    if expected == "accepted":
        assert not clip.outcomes, clip.outcomes[0].error if clip.outcomes else ""
        scores = clip.windows[0].scores
        assert scores.get("dynamics_light") or scores.get("dynamics_weather") or scores.get("dynamics_texture"), scores
        assert clip.windows[0].dynamic_masks.shape[0] == N
    else:
        assert clip.outcomes and clip.outcomes[0].reason in {"static_scene", "tiny_motion"}, clip.outcomes
