"""The synthetic light event: a wall lamp whose cone of light dims, lighting less of the wall."""
from __future__ import annotations

import math

import cv2
import numpy as np

from tasks.sources.synthetic_event_base import AA, Event, Patch, blend, grid, progress, to_u8
from tasks.sources.synthetic_scene import Stage, fixed_point, place_x

TINTS: dict[str, tuple[float, float, float]] = {
    "warm": (1.0, 0.88, 0.65), "white": (1.0, 1.0, 0.97), "yellow": (1.0, 0.95, 0.55), "orange": (1.0, 0.75, 0.45)}


class LightEvent(Event):
    """A wall lamp whose cone of light dims and shortens monotonically; the rest of the frame is unchanged."""

    family = "light"

    def __init__(self, rng: np.random.Generator, stage: Stage) -> None:
        u = self.unit = stage.unit
        self.colour_name = str(rng.choice(list(TINTS)))
        self.tint = np.array(TINTS[self.colour_name], np.float32)
        self.cone = math.radians(rng.uniform(28, 38))
        self.shade_y = rng.uniform(55, 90) * u
        self.apex_y = self.shade_y + 30 * u
        self.length = (stage.floor_y - 14 * u - self.apex_y) * rng.uniform(0.88, 1.0)
        self.half = self.length * math.tan(self.cone) + 16 * u
        self.cx = place_x(rng, stage, self.half)
        self.boost = rng.uniform(0.75, 1.0)
        lo = rng.uniform(0.05, 0.2)
        self.state = (1.0 - (1.0 - lo) * progress(rng, stage.num_frames)).astype(np.float32)
        self._set_roi(self.cx - self.half, self.shade_y - 40 * u, self.cx + self.half,
                      self.apex_y + self.length + 14 * u, stage)

    def draw_static(self, tex: np.ndarray, off: tuple[int, int]) -> None:
        u, x, y = self.unit, self.cx - off[0], self.shade_y - off[1]
        shade = np.array([[x - 30 * u, y - 28 * u], [x + 30 * u, y - 28 * u], [x + 52 * u, y + 22 * u],
                          [x - 52 * u, y + 22 * u]])
        cv2.line(tex, (int(x), int(y - 28 * u)), (int(x), int(y - 60 * u)), (60, 60, 60), max(2, int(5 * u)), AA)
        cv2.fillPoly(tex, [fixed_point(shade, (0.0, 0.0))], (70, 55, 45), AA, 4)

    def prepare(self, base: np.ndarray) -> None:
        self.base = base
        u = self.unit
        xx, yy = grid(self.roi)
        dx, dy = xx - np.float32(self.cx), yy - np.float32(self.apex_y)
        self.rho = np.hypot(dx, dy)
        phi = np.arctan2(np.abs(dx), np.maximum(dy, 1e-3))
        self.angular = np.clip((self.cone - phi) / 0.03, 0, 1) * (dy > 0)
        self.halo = 0.8 * np.exp(-(self.rho / np.float32(45 * u)) ** 2)
        bx, by = self.cx - self.roi[0], self.apex_y - 6 * u - self.roi[1]
        self.bulb_box = (max(0, int(bx - 17 * u)), max(0, int(by - 12 * u)), int(bx + 18 * u), int(by + 13 * u))
        x0, y0, x1, y1 = self.bulb_box
        self.bulb = np.zeros((y1 - y0, x1 - x0), np.uint8)
        centre = (int(round((bx - x0) * 16)), int(round((by - y0) * 16)))
        cv2.ellipse(self.bulb, centre, (int(15 * u * 16), int(10 * u * 16)), 0, 0, 360, 255, -1, AA, 4)

    def render(self, t: int) -> Patch:
        level, u = float(self.state[t]), self.unit
        # the pool shrinks as it dims and keeps a crisp edge: a sweeping edge is visible change at every level
        reach = self.length * (0.2 + 0.8 * level)
        rows = min(self.base.shape[0], int(self.apex_y + reach + 8 * u - self.roi[1]) + 1)
        half = max(reach * math.tan(self.cone) + 8 * u, 100 * u)
        c0 = max(0, int(self.cx - half - self.roi[0]))
        c1 = min(self.base.shape[1], int(self.cx + half - self.roi[0]) + 2)
        rho = self.rho[:rows, c0:c1]
        radial = np.clip((reach - rho) / np.float32(5 * u), 0, 1) * (1 - 0.4 * rho / np.float32(self.length))
        strength = np.float32(self.boost * (0.25 + 0.75 * level))
        gain = strength * np.maximum(self.angular[:rows, c0:c1] * radial, self.halo[:rows, c0:c1] * np.float32(level))
        out = to_u8(self.base[:rows, c0:c1].astype(np.float32) * (1 + gain[..., None] * self.tint))
        alpha = np.where(gain > 0.06, 255, 0).astype(np.uint8)
        x0, y0, x1, y1 = self.bulb_box
        bulb_col = (1 - level) * np.array([150, 150, 140], np.float32) + level * 255 * self.tint
        region = out[y0:y1, x0 - c0:x1 - c0]
        region[:] = to_u8(blend(region, bulb_col, self.bulb.astype(np.float32) / 255.0))
        np.maximum(alpha[y0:y1, x0 - c0:x1 - c0], self.bulb, out=alpha[y0:y1, x0 - c0:x1 - c0])
        return Patch(out, alpha, c0, 0)

    def caption(self) -> str:
        return (f"A wall lamp casts a {self.colour_name} cone of light on the wall; the light level dims "
                "steadily from bright to dim and the lit patch shrinks.")
