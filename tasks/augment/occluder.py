"""occluder: a textured, shaded, soft-edged object (a board, a ball, a person) passes in front of the dynamic
region, from any side, along a straight or curved path, changing scale as it comes closer or recedes, motion-blurred
while it moves; it stands over the region for at least one whole latent chunk.

Frames outside the degraded chunks are untouched. ``occluder_coverage`` is the fraction of the dynamic region under
the occluder (alpha-weighted); ``enter``/``exit`` are the first/last frames with any occluder pixel.
"""
from __future__ import annotations

import math

import numpy as np

from schemas.config_augment import OccluderConfig
from schemas.graph import InterruptionKind
from tasks.augment.common import (
    FamilyResult, NotApplicable, interval_frames, draw_chunks, draw_float, draw_int, event_state, first_run, smoothstep,
    to_list)
from tasks.augment.occluder_art import PERSON_ASPECT, composite, make_sprite
from tasks.augment.visibility import frame_visibility, region_box, region_points, visibility_curve
from tasks.graph import GraphError, chunked_graph
from tasks.records import Window

OPPOSITE = {"left": "right", "right": "left", "top": "bottom", "bottom": "top"}
BLUR_SAMPLES = 5


def sprite_size(shape: str, box: tuple[float, float, float, float], margin: float) -> tuple[float, float, float]:
    """(width, height, dy) of a sprite whose solid core covers ``box`` grown by ``margin``; ``dy`` is how far the
    sprite's centre sits below the box centre (a person's torso, not its centre, covers the region)."""
    rw, rh = box[2] - box[0] + 1 + 2 * margin, box[3] - box[1] + 1 + 2 * margin
    if shape == "rect":
        return rw * 1.08, rh * 1.08, 0.0
    if shape == "ellipse":
        return rw * math.sqrt(2.0) * 1.02, rh * math.sqrt(2.0) * 1.02, 0.0
    height = max(rh / 0.34, rw / 0.52 / PERSON_ASPECT)
    return PERSON_ASPECT * height, height, 0.07 * height


def _offscreen(side: str, hw: tuple[int, int], centre: tuple[float, float], half: tuple[float, float],
               along: float) -> tuple[float, float]:
    h, w = hw
    x, y = centre
    if side == "left":
        return -half[0] - 2.0, y + along
    if side == "right":
        return w - 1 + half[0] + 2.0, y + along
    if side == "top":
        return x + along, -half[1] - 2.0
    return x + along, h - 1 + half[1] + 2.0


def _path(tau: float, keys: dict, curve: tuple[float, float]) -> tuple[float, float, float]:
    """(x, y, scale) at (fractional) frame ``tau``: ease in from off-screen, hold, ease out."""
    t_in0, t_in1, t_out0, t_out1 = keys["t"]
    p0, p1, p2 = keys["p"]
    s0, s2 = keys["s"]
    if tau <= t_in1:
        u = float(smoothstep((tau - t_in0) / (t_in1 - t_in0)))
        a, b, s = p0, p1, s0 + (1.0 - s0) * u
        bulge = curve[0] * math.sin(math.pi * u)
    elif tau < t_out0:
        return p1[0], p1[1], 1.0
    else:
        u = float(smoothstep((tau - t_out0) / (t_out1 - t_out0)))
        a, b, s = p1, p2, 1.0 + (s2 - 1.0) * u
        bulge = curve[1] * math.sin(math.pi * u)
    dx, dy = b[0] - a[0], b[1] - a[1]
    norm = math.hypot(dx, dy) or 1.0
    return a[0] + dx * u - dy / norm * bulge, a[1] + dy * u + dx / norm * bulge, s


def apply_occluder(window: Window, config: OccluderConfig, rng: np.random.Generator,
                   threshold: float = 0.05) -> FamilyResult:
    frames = window.frames
    n, h, w = frames.shape[:3]
    first, last = draw_chunks(rng, config.hidden_chunks)
    start, end, hidden_start, hidden_end = interval_frames(first, last)
    points, origin = region_points(window)
    cover = config.cover if config.cover != "either" else ("dynamic_region" if rng.random() < 0.6 else "full_frame")
    box = region_box(points, range(start, end + 1))
    if cover == "full_frame" or box is None or origin == "whole_frame":
        cover, box = "full_frame", (0.0, 0.0, w - 1.0, h - 1.0)
    shapes = list(config.shapes) if cover == "dynamic_region" else [s for s in config.shapes if s != "person"]
    if not shapes:
        raise NotApplicable("occluder: no configured shape can cover the full frame")
    drawn = str(rng.choice(shapes))
    soft = draw_float(rng, config.edge_softness_px)
    side = str(rng.choice(config.sides))
    curved = str(rng.choice(config.paths)) == "curved"
    change = draw_float(rng, config.scale_change)
    slide_in, slide_out = draw_int(rng, config.slide_frames), draw_int(rng, config.slide_frames)
    arrive = hidden_start - int(rng.integers(0, hidden_start - start - slide_in + 2))
    leave = hidden_end + 1 + int(rng.integers(0, end - hidden_end - slide_out + 1))
    shutter = float(rng.uniform(0.4, 1.0)) if config.motion_blur else 0.0
    margin = 3.0 * soft + 6.0
    reasons = []
    for shape in [drawn, *[s for s in ("ellipse", "rect") if s != drawn and s in shapes]]:
        sw, sh, dy = sprite_size(shape, box, margin)
        premult, alpha = make_sprite(shape, (sw, sh), rng, config.textured, soft)
        centre = ((box[0] + box[2]) / 2.0, (box[1] + box[3]) / 2.0 + dy)
        s_in, s_out = change ** -0.5, change ** 0.5
        big = max(1.0, s_in, s_out)
        half = (big * alpha.shape[1] / 2.0, big * alpha.shape[0] / 2.0)
        along = float(rng.uniform(-0.25, 0.25)) * (w if side in ("top", "bottom") else h)
        keys = {"t": (arrive - slide_in, arrive, leave, leave + slide_out),
                "p": (_offscreen(side, (h, w), centre, half, along), centre,
                      _offscreen(OPPOSITE[side], (h, w), centre, half, -along)),
                "s": (s_in, s_out)}
        bend = (float(rng.uniform(0.1, 0.3)) * (1 if rng.random() < 0.5 else -1) * min(h, w) if curved else 0.0,
                float(rng.uniform(0.1, 0.3)) * (1 if rng.random() < 0.5 else -1) * min(h, w) if curved else 0.0)
        degraded = frames.copy()
        vis = visibility_curve(points, (h, w))
        touched = np.zeros(n, bool)
        for t in range(arrive - slide_in + 1, leave + slide_out):
            moving = not arrive <= t <= leave
            taus = t + (np.linspace(-0.5, 0.5, BLUR_SAMPLES) * shutter if moving and shutter > 0 else np.zeros(1))
            placements = [_path(float(tau), keys, bend) for tau in taus]
            degraded[t], a = composite(frames[t], premult, alpha, placements)
            touched[t] = bool((a > 0).any())
            vis[t] = frame_visibility(points[t], (h, w), gain=np.clip(1.0 - a, 0.0, 1.0))
        run = first_run(touched)
        if run is None:
            reasons.append(f"{shape}: never entered the frame")
            continue
        coverage = 1.0 - vis if cover == "dynamic_region" else np.where(touched, 1.0 - vis, 0.0)
        full = first_run(vis <= threshold)
        events = {"enter": run[0], "exit": run[1],
                  **({"full_cover_start": full[0], "full_cover_end": full[1]} if full else {})}
        try:
            graph = chunked_graph(InterruptionKind.occluder, first, last, vis, threshold, event_frames=events,
                                  per_frame={"occluder_coverage": to_list(coverage), **event_state(window)})
        except GraphError as err:
            reasons.append(f"{shape}: {err}")
            continue
        params = {"shape": shape, "textured": config.textured, "cover": cover, "region": [round(v, 1) for v in box],
                  "region_source": origin, "side": side, "exit_side": OPPOSITE[side],
                  "path": "curved" if curved else "straight", "scale_in": round(s_in, 4), "scale_out": round(s_out, 4),
                  "edge_softness_px": round(soft, 3), "shutter": round(shutter, 3), "size_px": [round(sw, 1), round(sh, 1)],
                  "slide_in_frames": slide_in, "slide_out_frames": slide_out, "arrive_frame": arrive,
                  "leave_frame": leave, "first_chunk": first, "last_chunk": last}
        return FamilyResult(graph=graph, degraded=degraded, params=params)
    raise NotApplicable("occluder: " + "; ".join(reasons))
