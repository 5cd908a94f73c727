"""light_toggle: fade out, a dark interval, fade in (ReMind Appendix F.2: nodes from the dimming schedule)."""
from __future__ import annotations

import cv2
import numpy as np

from schemas.config import LightToggleConfig
from schemas.graph import InterruptionKind
from tasks.augment.common import (
    MAX_SPAN, FamilyResult, draw_float, draw_int, event_state, place_start, run_of, to_list)
from tasks.graph import build_graph
from tasks.records import Window

GAMMA = 2.2  # the level multiplies approximately linear light: sRGB value * level ** (1 / GAMMA)


def light_schedule(num_frames: int, start: int, fade_out: int, dark: int, fade_in: int,
                   min_level: float) -> np.ndarray:
    """Per-frame light level in [min_level, 1]: 1 before ``start``; fade-out frames strictly between the two;
    ``dark`` frames at ``min_level``; fade-in frames strictly between; 1 again after."""
    level = np.ones(num_frames)
    for i in range(fade_out):
        level[start + i] = 1.0 - (1.0 - min_level) * (i + 1) / (fade_out + 1)
    dark_start = start + fade_out
    level[dark_start:dark_start + dark] = min_level
    for j in range(fade_in):
        level[dark_start + dark + j] = min_level + (1.0 - min_level) * (j + 1) / (fade_in + 1)
    return level


def dim_frames(frames: np.ndarray, level: np.ndarray) -> np.ndarray:
    """Multiply each frame's (approximately linear) light by its level: one 256-entry table per frame."""
    out = frames.copy()
    ramp = np.arange(256, dtype=np.float64)
    for t in np.flatnonzero(level < 1.0):
        lut = np.clip(np.rint(ramp * float(level[t]) ** (1.0 / GAMMA)), 0, 255).astype(np.uint8)
        out[t] = cv2.LUT(frames[t], lut)
    return out


def apply_light(window: Window, config: LightToggleConfig, rng: np.random.Generator) -> FamilyResult:
    n = len(window.frames)
    fade_out, fade_in = draw_int(rng, config.fade_frames), draw_int(rng, config.fade_frames)
    dark = draw_int(rng, config.dark_frames)
    dark = max(1, min(dark, MAX_SPAN - fade_out - fade_in))
    min_level = draw_float(rng, config.min_level)
    start = place_start(rng, fade_out + dark + fade_in)
    level = light_schedule(n, start, fade_out, dark, fade_in, min_level)

    # Nodes come from the schedule itself: the interruption is every frame below full light.
    first, last = run_of(level < 1.0, "dimmed frame")
    dark_start, dark_end = run_of(level <= min_level, "dark frame")
    events = {"fade_out_start": first, "dark_start": dark_start, "dark_end": dark_end, "fade_in_end": last}
    graph = build_graph(
        InterruptionKind.light_toggle, first, last, anchor_frames=[first - 1], recovery_frames=[last + 1],
        event_frames=events, per_frame={"light_level": to_list(level), **event_state(window)})
    params = {"fade_out_frames": fade_out, "dark_frames": dark, "fade_in_frames": fade_in,
              "min_level": round(min_level, 5), "gamma": GAMMA, "start_frame": start}
    return FamilyResult(graph=graph, degraded=dim_frames(window.frames, level), params=params)
