"""The synthetic events that change an object: a glass filling, a ball rolling, a fan turning, a balloon growing."""
from __future__ import annotations

import math

import cv2
import numpy as np

from tasks.sources.synthetic_event_base import AA, Event, Patch, blend, grid, progress, to_u8
from tasks.sources.synthetic_scene import Stage, fixed_point, place_x

PALETTE: dict[str, tuple[int, int, int]] = {
    "red": (210, 40, 40), "orange": (240, 130, 30), "yellow": (235, 205, 40), "green": (50, 165, 70),
    "teal": (30, 160, 160), "blue": (40, 90, 215), "purple": (135, 60, 185), "pink": (235, 110, 170)}


class FillEvent(Event):
    """A glass under a tap; the liquid level rises monotonically, with a falling stream and rising bubbles."""

    family = "fill"

    def __init__(self, rng: np.random.Generator, stage: Stage) -> None:
        u = self.unit = stage.unit
        self.colour_name = str(rng.choice(list(PALETTE)))
        self.colour = np.array(PALETTE[self.colour_name], np.float32)
        gw, gh = rng.uniform(170, 225) * u, rng.uniform(220, 270) * u
        self.cx = place_x(rng, stage, gw / 2 + 10 * u)
        bottom = stage.floor_y - rng.uniform(6, 20) * u
        top, wall = bottom - gh, 6 * u
        self.outer = np.array([[self.cx - gw / 2, top], [self.cx + gw / 2, top],
                               [self.cx + 0.42 * gw, bottom], [self.cx - 0.42 * gw, bottom]])
        self.inner_poly = self.outer + np.array([[wall, wall], [-wall, wall], [-wall, -wall], [wall, -wall]])
        self.inner_top, self.inner_bottom = top + wall, bottom - wall
        self.stream_x = self.cx + rng.uniform(-0.15, 0.15) * gw
        self.stream_w = rng.uniform(10, 16) * u
        self.tap_y = top - rng.uniform(35, 50) * u
        lo, hi = rng.uniform(0.03, 0.12), rng.uniform(0.85, 0.95)
        self.state = (lo + (hi - lo) * progress(rng, stage.num_frames)).astype(np.float32)
        self.wave_k = 2 * math.pi / (rng.uniform(50, 80) * u)
        self.wave_v = rng.uniform(2.5, 4.0) * u * rng.choice([-1, 1])  # crest speed, px/frame
        k = int(rng.integers(10, 18))
        self.bubbles = np.stack([self.cx + rng.uniform(-0.33, 0.33, k) * gw, rng.uniform(0, 1, k),
                                 rng.uniform(3, 6, k) * u, rng.uniform(3, 6, k) * u], 1)
        self.stream_speed = rng.uniform(8, 11) * u
        self._set_roi(self.cx - gw / 2 - 8 * u, self.tap_y - 8 * u, self.cx + gw / 2 + 8 * u, bottom + 5 * u, stage)

    def draw_static(self, tex: np.ndarray, off: tuple[int, int]) -> None:
        u, x, y = self.unit, int(self.stream_x - off[0]), int(self.tap_y - off[1])
        cv2.line(tex, (x, y - int(20 * u)), (x, -10), (150, 150, 155), int(12 * u), AA)
        cv2.rectangle(tex, (x - int(20 * u), y - int(28 * u)), (x + int(20 * u), y), (120, 122, 128), -1, AA)

    def prepare(self, base: np.ndarray) -> None:
        self.base = base
        self.xx, self.yy = grid(self.roi)
        origin = (self.roi[0], self.roi[1])
        self.alpha = np.zeros(base.shape[:2], np.uint8)
        cv2.fillPoly(self.alpha, [fixed_point(self.outer, origin)], 255, AA, 4)
        inner = np.zeros(base.shape[:2], np.uint8)
        cv2.fillPoly(inner, [fixed_point(self.inner_poly, origin)], 255, AA, 4)
        self.inner = inner.astype(np.float32) / 255.0
        glass = to_u8(blend(base, np.array([235, 242, 248], np.float32), self.inner * 0.18))  # glass tint
        thick = max(2, int(4 * self.unit))
        cv2.polylines(glass, [fixed_point(self.outer, origin)], True, (225, 232, 238), thick, AA, 4)
        self.glass = glass
        shade = 0.75 + 0.25 * np.clip((self.inner_bottom - self.yy) / 200.0, 0, 1)
        self.liquid = self.colour[None, None, :] * shade[..., None]

    def render(self, t: int) -> Patch:
        x0, y0 = self.roi[:2]
        level = float(self.state[t])
        surface = self.inner_bottom - level * (self.inner_bottom - self.inner_top)
        wave = surface + 2.0 * self.unit * np.sin(self.wave_k * (self.xx[0] - self.wave_v * t))
        r0 = max(0, int(math.floor(wave.min() - y0)) - 1)
        out = self.glass.copy()
        cover = np.clip(self.yy[r0:] - wave[None, :] + 0.5, 0, 1) * self.inner[r0:] * 0.92
        out[r0:] = to_u8(blend(self.glass[r0:], self.liquid[r0:], cover))
        light = tuple(int(c) for c in np.clip(self.colour * 0.5 + 128, 0, 255))
        span = self.inner_bottom - surface
        for bx, ph, speed, r in self.bubbles:
            if span > 3 * r:
                y = self.inner_bottom - r - (ph * span + speed * t) % (span - 2 * r)
                cv2.circle(out, (int(round((bx - x0) * 16)), int(round((y - y0) * 16))), int(r * 16), light, 2, AA, 4)
        alpha = self.alpha.copy()
        c0 = max(0, int(self.stream_x - self.stream_w / 2 - x0) - 1)
        c1 = int(self.stream_x + self.stream_w / 2 - x0) + 2
        r_top, r_bot = max(0, int(math.ceil(self.tap_y - y0))), int(math.floor(surface - y0)) + 1
        if r_bot > r_top:
            xs, ys = self.xx[r_top:r_bot, c0:c1], self.yy[r_top:r_bot, c0:c1]
            half = self.stream_w / 2
            cov = np.clip(half + 0.5 - np.abs(xs - self.stream_x), 0, 1)
            dash = ((ys - self.tap_y - self.stream_speed * t) % (24 * self.unit)) < 8 * self.unit
            col = np.where(dash[..., None], np.clip(self.colour * 0.6 + 100, 0, 255), self.colour)
            out[r_top:r_bot, c0:c1] = to_u8(blend(out[r_top:r_bot, c0:c1], col, cov))
            alpha[r_top:r_bot, c0:c1] = np.maximum(alpha[r_top:r_bot, c0:c1], to_u8(cov * 255.0))
        return Patch(out, alpha, 0, 0)

    def caption(self) -> str:
        return (f"A clear glass under a tap fills with {self.colour_name} liquid; the liquid level rises "
                "steadily from nearly empty to nearly full.")


class TranslateEvent(Event):
    """A beach ball rolling along a shelf on the wall; state = position along the path."""

    family = "translate"

    def __init__(self, rng: np.random.Generator, stage: Stage) -> None:
        u = self.unit = stage.unit
        names = list(rng.permutation(list(PALETTE)))
        self.colour_name = str(names[0])
        self.colours = np.array([PALETTE[n] for n in names[:3]], np.float32)
        self.segments = int(rng.choice([4, 6]))
        self.r = rng.uniform(84, 104) * u
        self.length = rng.uniform(0.38, 0.5) * stage.width
        self.direction = int(rng.choice([-1, 1]))
        if stage.pan_sign:  # a pan follows the ball; a pan_return loses it: it rolls out of the view
            self.direction = stage.pan_sign * (1 if stage.trajectory == "pan" else -1)
        mid = place_x(rng, stage, self.length / 2 + self.r + 10 * u)
        self.x_start = mid - self.direction * self.length / 2
        self.y = stage.floor_y - self.r - rng.uniform(30, 90) * u
        self.state = progress(rng, stage.num_frames).astype(np.float32)
        self.shelf = (mid - self.length / 2 - 1.6 * self.r, mid + self.length / 2 + 1.6 * self.r)
        self.shelf_colour = tuple(int(c) for c in rng.integers(60, 140, 3))
        half = self.length / 2 + self.r + 6 * u
        self._set_roi(mid - half, self.y - self.r - 6 * u, mid + half, self.y + self.r + 3 * u, stage)

    def draw_static(self, tex: np.ndarray, off: tuple[int, int]) -> None:
        y = int(round(self.y + self.r - off[1]))
        cv2.rectangle(tex, (int(self.shelf[0] - off[0]), y + 1), (int(self.shelf[1] - off[0]), y + int(12 * self.unit)),
                      self.shelf_colour, -1, AA)

    def prepare(self, base: np.ndarray) -> None:
        self.base = base
        half = self.half_sprite = int(math.ceil(self.r)) + 3
        d1 = np.arange(-half, half + 1, dtype=np.float32)
        dx, dy = d1[None, :], d1[:, None]
        d = np.sqrt(dx ** 2 + dy ** 2)
        seg = ((np.arctan2(dy, dx) % (2 * np.pi)) * (self.segments / (2 * np.pi))).astype(np.int32)
        colour = self.colours[seg % (2 if self.segments == 4 else 3)]  # neighbours always differ
        colour[d < 0.2 * self.r] = 245.0
        self.sprite = colour  # rotated per frame: the ball rolls
        r = np.float32(self.r)
        shade = 1 - 0.3 * (d / r) ** 2 + 0.3 * np.exp(-((dx + 0.35 * r) ** 2 + (dy + 0.4 * r) ** 2) / (0.22 * r) ** 2)
        cover = np.clip(r + 0.5 - d, 0, 1)
        self.shade_cover = np.dstack([shade * cover, cover]).astype(np.float32)  # fixed light: not rotated

    def render(self, t: int) -> Patch:
        s = float(self.state[t]) * self.length
        cx, cy = self.x_start + self.direction * s - self.roi[0], self.y - self.roi[1]
        roll = self.direction * s / self.r  # rolling without slipping; y-down: positive angle = clockwise
        half, size = self.half_sprite, 2 * self.half_sprite + 1
        wx, wy = int(math.floor(cx)) - half, int(math.floor(cy)) - half
        fx, fy = cx - math.floor(cx), cy - math.floor(cy)
        rot = cv2.getRotationMatrix2D((half, half), -math.degrees(roll), 1.0)  # cv2: positive = anticlockwise
        rot[:, 2] += (fx, fy)
        shift = np.array([[1.0, 0.0, fx], [0.0, 1.0, fy]])
        colour = cv2.warpAffine(self.sprite, rot, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        sc = cv2.warpAffine(self.shade_cover, shift, (size, size), flags=cv2.INTER_LINEAR)
        h, w = self.base.shape[:2]
        x0, y0, x1, y1 = max(0, wx), max(0, wy), min(w, wx + size), min(h, wy + size)
        win = (slice(y0 - wy, y1 - wy), slice(x0 - wx, x1 - wx))
        cover = sc[..., 1][win]
        rgb = self.base[y0:y1, x0:x1].astype(np.float32) * (1 - cover[..., None]) + colour[win] * sc[..., :1][win]
        return Patch(to_u8(rgb), to_u8(cover * 255), x0, y0)

    def caption(self) -> str:
        way = ("right", "left") if self.direction > 0 else ("left", "right")
        return (f"A {self.colour_name} beach ball rolls to the {way[0]} along a shelf; its position moves steadily "
                f"from the {way[1]} end of the shelf towards the {way[0]} end.")


class RotateEvent(Event):
    """A pinwheel on a stand spinning at constant speed; one blade is white so the phase is observable."""

    family = "rotate"

    def __init__(self, rng: np.random.Generator, stage: Stage) -> None:
        u = self.unit = stage.unit
        names = list(rng.permutation(list(PALETTE)))
        self.colour_name = str(names[0])
        self.blade_colours = [PALETTE[names[0]], PALETTE[names[1]]]
        self.R = rng.uniform(128, 160) * u
        self.cx = place_x(rng, stage, self.R + 10 * u)
        lo, hi = self.R + 20 * u, stage.floor_y - self.R - 30 * u
        self.cy = rng.uniform(lo, hi) if lo < hi else (lo + hi) / 2
        self.blades = int(rng.choice([4, 5, 6]))
        self.omega = math.radians(rng.uniform(4.0, 7.0)) * rng.choice([-1, 1])
        self.theta0 = rng.uniform(0, 2 * math.pi)
        angle = self.theta0 + self.omega * np.arange(stage.num_frames)
        self.state = ((angle % (2 * math.pi)) / (2 * math.pi)).astype(np.float32)
        self.floor_y = stage.floor_y
        pad = 6 * u
        self._set_roi(self.cx - self.R - pad, self.cy - self.R - pad, self.cx + self.R + pad,
                      self.cy + self.R + pad, stage)

    def draw_static(self, tex: np.ndarray, off: tuple[int, int]) -> None:
        x = int(self.cx - off[0])
        cv2.line(tex, (x, int(self.cy - off[1])), (x, int(self.floor_y - off[1]) + 2), (90, 80, 70),
                 max(3, int(10 * self.unit)), AA)

    def render(self, t: int) -> Patch:
        theta = self.theta0 + self.omega * t
        cx, cy = self.cx - self.roi[0], self.cy - self.roi[1]
        out, alpha = self.base.copy(), np.zeros(self.base.shape[:2], np.uint8)
        width = 0.62 * 2 * math.pi / self.blades
        rad = np.concatenate([[0.12 * self.R], np.full(8, self.R), [0.55 * self.R]])
        for b in range(self.blades):
            a0 = theta + b * 2 * math.pi / self.blades
            ang = np.concatenate([[a0], np.linspace(a0 + 0.05 * width, a0 + 0.8 * width, 8), [a0 + width]])
            poly = fixed_point(np.stack([cx + rad * np.cos(ang), cy + rad * np.sin(ang)], 1), (0.0, 0.0))
            colour = (245, 245, 240) if b == 0 else self.blade_colours[b % 2]
            cv2.fillPoly(out, [poly], colour, AA, 4)
            cv2.polylines(out, [poly], True, (40, 40, 40), 1, AA, 4)
            cv2.fillPoly(alpha, [poly], 255, AA, 4)
        hub = (int(round(cx * 16)), int(round(cy * 16)))
        cv2.circle(out, hub, int(0.13 * self.R * 16), (50, 50, 55), -1, AA, 4)
        cv2.circle(out, hub, int(0.05 * self.R * 16), (200, 200, 200), -1, AA, 4)
        cv2.circle(alpha, hub, int(0.13 * self.R * 16), 255, -1, AA, 4)
        return Patch(out, alpha, 0, 0)

    def caption(self) -> str:
        way = "clockwise" if self.omega > 0 else "counter-clockwise"
        return (f"A {self.colour_name} pinwheel on a stand spins {way} at a steady speed; its rotation phase "
                "advances continuously, tracked by its white blade.")


class GrowEvent(Event):
    """A polka-dot balloon tied at its knot, inflating so its radius grows monotonically."""

    family = "grow"

    def __init__(self, rng: np.random.Generator, stage: Stage) -> None:
        u = self.unit = stage.unit
        self.colour_name = str(rng.choice(list(PALETTE)))
        self.colour = np.array(PALETTE[self.colour_name], np.float32)
        self.r0 = rng.uniform(84, 94) * u
        self.r_max = self.r0 + rng.uniform(85, 100) * u
        self.aspect = 1.1
        self.knot_y = stage.floor_y - rng.uniform(45, 70) * u
        self.cx = place_x(rng, stage, self.r_max + 10 * u)
        radius = self.r0 + (self.r_max - self.r0) * progress(rng, stage.num_frames)
        self.state = (radius / self.r_max).astype(np.float32)
        self.floor_y = stage.floor_y
        top = self.knot_y - 2 * self.aspect * self.r_max - 6 * u
        self._set_roi(self.cx - self.r_max - 6 * u, top, self.cx + self.r_max + 6 * u, self.knot_y + 14 * u, stage)

    def draw_static(self, tex: np.ndarray, off: tuple[int, int]) -> None:
        x = int(self.cx - off[0])
        cv2.line(tex, (x, int(self.knot_y - off[1])), (x + int(6 * self.unit), int(self.floor_y - off[1]) + 2),
                 (235, 235, 235), max(1, int(2 * self.unit)), AA)

    def prepare(self, base: np.ndarray) -> None:
        """A premultiplied RGBA sprite of the fully inflated balloon, scaled down per frame."""
        self.base = base
        rm, hx, hy = self.r_max, int(math.ceil(self.r_max)) + 3, int(math.ceil(self.aspect * self.r_max)) + 3
        self.sprite_centre = (float(hx), float(hy))
        nx = (np.arange(-hx, hx + 1, dtype=np.float32) / np.float32(rm))[None, :]
        ny = (np.arange(-hy, hy + 1, dtype=np.float32) / np.float32(rm))[:, None]
        de = np.sqrt(nx ** 2 + (ny / np.float32(self.aspect)) ** 2)
        cover = np.clip((1 - de) * np.float32(0.6 * rm) + 0.5, 0, 1)  # edge ~1 px once scaled to mid size
        gx, gy = nx / np.float32(0.42), ny / np.float32(0.42)  # polka dots scale with the balloon
        dot = (gx - np.round(gx)) ** 2 + (gy - np.round(gy)) ** 2 < 0.22 ** 2
        col = np.where(dot[..., None], np.clip(self.colour * 0.45 + 140, 0, 255), self.colour)
        shade = 0.8 + 0.2 * (1 - de ** 2) + 0.35 * np.exp(-((nx + 0.35) ** 2 + (ny + 0.45) ** 2) / 0.04)
        self.sprite = np.dstack([col * (shade * cover)[..., None], cover]).astype(np.float32)

    def render(self, t: int) -> Patch:
        k = float(self.state[t])  # r / r_max: the sprite's scale
        r = k * self.r_max
        cx, cy = self.cx - self.roi[0], self.knot_y - self.aspect * r - self.roi[1]
        h, w = self.base.shape[:2]
        x0, x1 = max(0, int(cx - r - 3)), min(w, int(cx + r + 4))
        y0, y1 = max(0, int(cy - self.aspect * r - 3)), h
        sx, sy = self.sprite_centre
        m = np.array([[k, 0.0, cx - x0 - k * sx], [0.0, k, cy - y0 - k * sy]])
        rgba = cv2.warpAffine(self.sprite, m, (x1 - x0, y1 - y0), flags=cv2.INTER_LINEAR)
        cover = rgba[..., 3]
        out = to_u8(self.base[y0:y1, x0:x1].astype(np.float32) * (1 - cover[..., None]) + rgba[..., :3])
        alpha = to_u8(cover * 255)
        u = self.unit
        knot = np.array([[self.cx, self.knot_y - 2 * u], [self.cx - 7 * u, self.knot_y + 10 * u],
                         [self.cx + 7 * u, self.knot_y + 10 * u]])
        poly = fixed_point(knot, (x0 + self.roi[0], y0 + self.roi[1]))
        cv2.fillPoly(out, [poly], tuple(int(c) for c in self.colour * 0.8), AA, 4)
        cv2.fillPoly(alpha, [poly], 255, AA, 4)
        return Patch(out, alpha, x0, y0)

    def caption(self) -> str:
        return (f"A {self.colour_name} polka-dot balloon tied to the floor inflates; its radius grows steadily "
                "from small to large.")
