"""Edits of the real clips in tests/data/real, made with numpy: the transitions and the look-alikes a cut detector
must tell apart (a dissolve, a fade to black and back, a flash, a whip pan, hand-held walking).

Each case is built from frames decoded the way the pipeline decodes (16 fps, 480x832), so a detector sees what it
would see in a run. Deterministic: no randomness but a fixed seed."""
from __future__ import annotations

from functools import cache
from pathlib import Path

import cv2
import numpy as np

REAL = Path(__file__).resolve().parents[1] / "data" / "real"


@cache
def decoded(name: str, frames: int = 120) -> np.ndarray:
    from tasks.video_io import decode_normalised

    out = decode_normalised(REAL / name, 16, 480, 832, max_frames=frames).frames
    out.setflags(write=False)
    return out


def _ramp(n: int) -> np.ndarray:
    return np.linspace(0.0, 1.0, n + 2)[1:-1, None, None, None]


def dissolve(length: int = 12) -> np.ndarray:
    """box.mp4 cross-dissolving into vtest-11s.mp4 over ``length`` frames."""
    a, b = decoded("box.mp4")[:70], decoded("vtest-11s.mp4")[:70]
    w = _ramp(length)
    mix = (a[-length:] * (1 - w) + b[:length] * w).astype(np.uint8)
    return np.concatenate([a[:-length], mix, b[length:]])


def fade_through_black(length: int = 10, hold: int = 4) -> np.ndarray:
    """cup.mp4 fading to black, ``hold`` black frames, then fading back in on the same shot."""
    a = decoded("cup.mp4")[:120]
    w = _ramp(length)
    out = np.concatenate([a[:50], (a[50:50 + length] * (1 - w)).astype(np.uint8),
                          np.zeros((hold, *a.shape[1:]), np.uint8),
                          (a[50 + length:50 + 2 * length] * w).astype(np.uint8), a[50 + 2 * length:]])
    return out


def flash(at: int = 60, frames: int = 2) -> np.ndarray:
    """tree-11s.mp4 with a photographer's flash: ``frames`` frames blown out towards white, then back."""
    a = decoded("tree-11s.mp4")[:120].astype(np.float32)
    for i, strength in zip(range(at, at + frames + 2), (0.9, 0.6, 0.3, 0.1)):
        a[i] = a[i] + (255 - a[i]) * strength
    return a.astype(np.uint8)


def whip_pan(at: int = 50, length: int = 8) -> np.ndarray:
    """vtest-11s.mp4 (a static camera) whipped sideways across its own mirrored view and back to rest, motion
    blurred: one shot, a fast camera move."""
    a = decoded("vtest-11s.mp4")[:110]
    h, w = a.shape[1:3]
    offsets = np.zeros(len(a))
    speed = np.sin(np.linspace(0, np.pi, length)) ** 2
    offsets[at:at + length] = np.cumsum(speed) / speed.sum() * w
    offsets[at + length:] = w
    out = []
    for frame, x, v in zip(a, offsets, np.r_[0, np.diff(offsets)]):
        panorama = np.concatenate([frame, frame[:, ::-1]], axis=1)
        view = panorama[:, int(x):int(x) + w]
        if v > 2:
            view = cv2.blur(view, (int(v) | 1, 1))
        out.append(view)
    return np.stack(out)


def handheld_walk(seed: int = 0) -> np.ndarray:
    """coin-pen.mov (a locked-off camera) seen as if carried by someone walking: a bob at step rate, sway, a slow
    drift and jitter, cropped inside the frame (no borders)."""
    a = decoded("coin-pen.mov")[:120]
    rng = np.random.default_rng(seed)
    h, w = a.shape[1:3]
    t = np.arange(len(a)) / 16.0
    jitter = np.cumsum(rng.normal(0, 1.5, (len(a), 3)), axis=0)
    out = []
    for i, frame in enumerate(a):
        dx = 18 * np.sin(2 * np.pi * 0.9 * t[i]) + 2.0 * i * 0.5 + jitter[i, 0]
        dy = 14 * np.abs(np.sin(2 * np.pi * 1.8 * t[i])) + jitter[i, 1]
        angle = 1.5 * np.sin(2 * np.pi * 0.9 * t[i] + 0.5) + 0.1 * jitter[i, 2]
        m = cv2.getRotationMatrix2D((w / 2, h / 2), angle, 1.25)
        m[:, 2] += (dx - 30, dy)
        out.append(cv2.warpAffine(frame, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT))
    return np.stack(out)


CASES = {"dissolve": dissolve, "fade_through_black": fade_through_black, "flash": flash, "whip_pan": whip_pan,
         "handheld_walk": handheld_walk}
