"""light_toggle: the lights fade out, stay off for at least one whole latent chunk, and come back (ReMind Appendix
F.2: nodes from the dimming schedule).

The toggle works in linear light: sRGB -> linear, times a gain (one level for the whole frame, or a lamp's soft-edged
region around the dynamic region going dark), an optional colour shift while dim, a black level that lifts the
darks, signal-dependent sensor noise (shot + read, scaled up as the camera's gain would be), back to sRGB. Frames
at full light are untouched, so clean and degraded are the same video outside the interval.
"""
from __future__ import annotations

import numpy as np
from scipy.special import ndtri

from schemas.config_augment import LightToggleConfig
from schemas.graph import InterruptionKind
from tasks.augment.common import FamilyResult, draw_chunks, draw_float, draw_int, interval_frames, event_state, to_list
from tasks.augment.visibility import frame_visibility, region_box, region_points, visibility_curve
from tasks.graph import chunked_graph
from tasks.records import Window

_SRGB = np.arange(256, dtype=np.float64) / 255.0
SRGB_TO_LINEAR = np.where(_SRGB <= 0.04045, _SRGB / 12.92, ((_SRGB + 0.055) / 1.055) ** 2.4).astype(np.float32)


_LIN = np.linspace(0.0, 1.0, 1 << 16)
LINEAR_TO_SRGB = np.clip(np.rint(np.where(_LIN <= 0.0031308, _LIN * 12.92, 1.055 * _LIN ** (1 / 2.4) - 0.055) * 255),
                         0, 255).astype(np.uint8)


NORMAL_QUANTILES = ndtri((np.arange(1 << 16) + 0.5) / (1 << 16)).astype(np.float32)


def linear_to_srgb(lin: np.ndarray) -> np.ndarray:
    """Linear light in [0, 1] -> sRGB uint8 through a 65536-entry table."""
    idx = np.clip(lin * np.float32((1 << 16) - 1) + np.float32(0.5), 0, (1 << 16) - 1).astype(np.uint16)
    return LINEAR_TO_SRGB[idx]


def light_schedule(num_frames: int, fade_out: tuple[int, int], fade_in: tuple[int, int],
                   min_level: float) -> np.ndarray:
    """Per-frame level: 1, then a smooth fade over frames ``fade_out[0]..fade_out[1]`` (exclusive) down to
    ``min_level``, held, a fade back over ``fade_in[0]..fade_in[1]`` (exclusive), 1 again."""
    level = np.ones(num_frames)
    (a, b), (c, d) = fade_out, fade_in
    level[b:c] = min_level
    for t in range(a, b):
        x = (t - a + 1) / (b - a + 1)
        level[t] = 1.0 - (1.0 - min_level) * x * x * (3 - 2 * x)
    for t in range(c, d):
        x = (t - c + 1) / (d - c + 1)
        level[t] = min_level + (1.0 - min_level) * x * x * (3 - 2 * x)
    return level


def lamp_mask(hw: tuple[int, int], box: tuple[float, float, float, float], margin: float, soft: float) -> np.ndarray:
    """(H,W) float32 in [0,1]: 1 over ``box`` grown by ``margin`` px, falling off smoothly over ``soft`` px."""
    h, w = hw
    x0, y0, x1, y1 = box
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    dx = np.maximum(0, np.maximum(x0 - margin - xx, xx - x1 - margin))
    dy = np.maximum(0, np.maximum(y0 - margin - yy, yy - y1 - margin))
    d = np.hypot(dx, dy) / max(soft, 1e-6)
    return np.clip(1.0 - d * d * (3 - 2 * np.clip(d, 0, 1)), 0.0, 1.0) * (d < 1)


def standard_normal(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """Standard normal float32 samples: a random 16-bit index into the normal's 65536 quantiles. A third of
    ``rng.standard_normal``'s cost; the tails stop at 4.3 sigma, past anything 8-bit sensor noise shows."""
    count = int(np.prod(shape))
    return NORMAL_QUANTILES[np.frombuffer(rng.bytes(2 * count), np.uint16)].reshape(shape)


def relight(frame: np.ndarray, gain: np.ndarray | float, tint: np.ndarray, black: float, noise: float,
            rng: np.random.Generator) -> np.ndarray:
    """One frame in linear light: gain x tint, a black level where dimmed, shot + read noise, back to sRGB.
    Pixels at full light come back unchanged, so a lamp's gain map is only computed over the box it dims."""
    g = np.asarray(gain, np.float32)
    if g.ndim == 0:
        return _relight(frame, g, tint, black, noise, rng)
    dimmed = g < 1.0
    rows, cols = np.flatnonzero(dimmed.any(axis=1)), np.flatnonzero(dimmed.any(axis=0))
    out = frame.copy()
    if rows.size:
        box = (slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1))
        out[box] = _relight(frame[box], g[box][..., None], tint, black, noise, rng)
    return out


def _relight(frame: np.ndarray, g: np.ndarray, tint: np.ndarray, black: float, noise: float,
             rng: np.random.Generator) -> np.ndarray:
    out = SRGB_TO_LINEAR[frame]
    dim = np.float32(1.0) - g
    out *= g
    out += np.float32(black) * dim  # the ambient that lifts the darks has the cast too
    out *= np.float32(1.0) + (tint - np.float32(1.0)) * dim
    # the camera pushes its gain up in the dark
    camera_gain = np.minimum(np.float32(2.0), np.maximum(g, np.float32(0.05)) ** np.float32(-0.5))
    scale = np.float32(noise) * camera_gain * np.minimum(np.float32(1.0), dim * np.float32(4))
    sigma = np.sqrt(np.float32(0.002) * out + np.float32(0.000004))
    sigma *= scale
    sigma *= standard_normal(rng, out.shape)
    out += sigma
    return linear_to_srgb(out)


def apply_light(window: Window, config: LightToggleConfig, rng: np.random.Generator,
                threshold: float = 0.05) -> FamilyResult:
    frames = window.frames
    n, h, w = frames.shape[:3]
    first, last = draw_chunks(rng, config.hidden_chunks)
    start, end, hidden_start, hidden_end = interval_frames(first, last)
    fade_out, fade_in = draw_int(rng, config.fade_frames), draw_int(rng, config.fade_frames)
    fade_out, fade_in = min(fade_out, hidden_start - start), min(fade_in, end - hidden_end)
    off = hidden_start - int(rng.integers(0, hidden_start - start - fade_out + 1))  # first frame at min level
    on = hidden_end + 1 + int(rng.integers(0, end - hidden_end - fade_in + 1))  # first frame of the fade-in
    min_level = min(draw_float(rng, config.min_level), threshold)
    level = light_schedule(n, (off - fade_out, off), (on, on + fade_in), min_level)

    points, origin = region_points(window)
    local = bool(rng.random() < config.local_probability) and origin != "whole_frame"
    box = region_box(points)
    soft = 0.0
    if local and box is not None:
        bw, bh = box[2] - box[0], box[3] - box[1]
        margin, soft = 0.15 * max(bw, bh) + 8.0, float(rng.uniform(0.3, 0.8) * max(bw, bh) + 20.0)
        lamp = lamp_mask((h, w), box, margin, soft)
    else:
        local, lamp = False, None
    tinted = bool(rng.random() < config.colour_shift_probability)
    tint = (np.array([rng.uniform(0.75, 0.9), rng.uniform(0.85, 1.0), 1.0], np.float32) if tinted
            else np.ones(3, np.float32))
    black = draw_float(rng, config.black_level)
    noise = draw_float(rng, config.noise)

    degraded = frames.copy()
    vis = level * visibility_curve(points, (h, w))
    for t in np.flatnonzero(level < 1.0):
        gain = np.float32(level[t]) if lamp is None else (1.0 - (1.0 - np.float32(level[t])) * lamp).astype(np.float32)
        if lamp is not None:
            vis[t] = frame_visibility(points[t], (h, w), gain=gain)
        degraded[t] = relight(frames[t], gain, tint, black, noise, rng)
    events = {"fade_out_start": off - fade_out, "dark_start": off, "dark_end": on - 1, "fade_in_end": on + fade_in - 1}
    graph = chunked_graph(InterruptionKind.light_toggle, first, last, vis, threshold, event_frames=events,
                          per_frame={"light_level": to_list(level), **event_state(window)})
    params = {"mode": "local" if local else "global", "fade_out_frames": fade_out, "fade_in_frames": fade_in,
              "dark_frames": on - off, "min_level": round(min_level, 5), "black_level": round(black, 5),
              "noise": round(noise, 4), "colour_shift": [round(float(c), 4) for c in tint],
              "lamp_region": None if not local or box is None else [round(v, 1) for v in box],
              "lamp_soft_px": round(soft, 1) if local else None, "region_source": origin,
              "first_chunk": first, "last_chunk": last}
    return FamilyResult(graph=graph, degraded=degraded, params=params)
