"""Static scenery of the synthetic source: camera paths, exact plane geometry, procedural textures, markers.

Conventions: world frame = camera of frame 0, OpenCV axes (x right, y down, z forward). Pixel coordinates
are array indices (the centre of column x is at x), in the renderer, in the intrinsics and in
``project_points``. The wall is the plane z = D (fronto-parallel at frame 0), the floor the plane y = h.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

HFOV_DEG = 60.0  # matches geometry.assumed_hfov_deg, so the classical estimator's focal guess is right


def intrinsics_matrix(height: int, width: int, hfov_deg: float = HFOV_DEG) -> np.ndarray:
    """Pinhole K (float64) with the principal point at the frame centre."""
    f = (width / 2.0) / math.tan(math.radians(hfov_deg) / 2.0)
    return np.array([[f, 0.0, width / 2.0], [0.0, f, height / 2.0], [0.0, 0.0, 1.0]])


def rotation_yaw_pitch(yaw: float, pitch: float) -> np.ndarray:
    """R = R_y(yaw) R_x(pitch), radians; positive yaw turns the camera right, positive pitch up."""
    cy, sy, cp, sp = math.cos(yaw), math.sin(yaw), math.cos(pitch), math.sin(pitch)
    r_y = np.array([[cy, 0.0, sy], [0.0, 1.0, 0.0], [-sy, 0.0, cy]])
    r_x = np.array([[1.0, 0.0, 0.0], [0.0, cp, -sp], [0.0, sp, cp]])
    return r_y @ r_x


def _smoothstep(u: np.ndarray) -> np.ndarray:
    u = np.clip(u, 0.0, 1.0)
    return u * u * (3.0 - 2.0 * u)


def trajectory_profile(kind: str, num_frames: int, rng: np.random.Generator) -> np.ndarray:
    """Per-frame fraction in [0, 1] of the trajectory's peak pose; exactly 0 where the camera is at frame 0."""
    t = np.arange(num_frames, dtype=np.float64)
    if kind == "static":
        return np.zeros(num_frames)
    if kind == "pan":
        u = t / max(num_frames - 1, 1)
        return 0.4 * u + 0.6 * _smoothstep(u)  # strictly increasing, never stalls
    if kind != "pan_return":
        raise ValueError(f"unknown trajectory {kind!r}")
    s = num_frames / 81.0
    t0 = round(rng.uniform(12, 18) * s)
    t1 = t0 + max(2, round(rng.uniform(18, 24) * s))
    t2 = t1 + max(1, round(rng.uniform(2, 6) * s))
    t3 = min(t2 + max(2, round(rng.uniform(16, 22) * s)), num_frames - 2)
    prof = np.zeros(num_frames)
    out = (t >= t0) & (t < t1)
    prof[out] = _smoothstep((t[out] - t0) / (t1 - t0))
    prof[(t >= t1) & (t < t2)] = 1.0
    back = (t >= t2) & (t < t3)
    prof[back] = _smoothstep(1.0 - (t[back] - t2) / (t3 - t2))
    return prof


def camera_path(kind: str, num_frames: int, rng: np.random.Generator) -> tuple[np.ndarray, int]:
    """(N,4,4) float64 camera-to-world poses and the pan direction (+1 right, -1 left, 0 static)."""
    prof = trajectory_profile(kind, num_frames, rng)
    if kind == "static":
        return np.tile(np.eye(4), (num_frames, 1, 1)), 0
    sign = int(rng.choice([-1, 1]))
    peak_yaw = math.radians(rng.uniform(18, 24) if kind == "pan" else rng.uniform(22, 28))
    peak_pitch = math.radians(rng.uniform(-3.0, 3.0))
    # a little translation gives the floor/wall parallax an essential-matrix estimator needs
    peak_c = np.array([sign * rng.uniform(0.05, 0.2), rng.uniform(-0.05, 0.05), rng.uniform(-0.1, 0.2)])
    poses = np.tile(np.eye(4), (num_frames, 1, 1))
    for i, p in enumerate(prof):
        if p == 0.0:
            continue
        poses[i, :3, :3] = rotation_yaw_pitch(sign * peak_yaw * p, peak_pitch * p)
        poses[i, :3, 3] = peak_c * p
    return poses, sign


def rotation_angles_deg(camera_c2w: np.ndarray) -> np.ndarray:
    """Geodesic rotation angle of each pose to frame 0, degrees."""
    r0 = camera_c2w[0, :3, :3].astype(np.float64)
    rel = np.einsum("ji,njk->nik", r0, camera_c2w[:, :3, :3].astype(np.float64))
    cos = np.clip((np.trace(rel, axis1=1, axis2=2) - 1.0) / 2.0, -1.0, 1.0)
    return np.degrees(np.arccos(cos))


def loop_return_frame(camera_c2w: np.ndarray) -> int | None:
    """First frame after the farthest pose whose rotation is nearest frame 0 (None if nothing follows)."""
    angles = rotation_angles_deg(camera_c2w)
    far = int(np.argmax(angles))
    if far >= len(angles) - 1 or angles[far] == 0.0:
        return None
    return far + 1 + int(np.argmin(angles[far + 1:]))


@dataclass(frozen=True)
class Stage:
    """Frame geometry an event is placed in."""

    height: int
    width: int
    unit: float  # pixels per design pixel (1.0 at 480x832)
    floor_y: float  # frame-0 row of the wall/floor line
    num_frames: int
    pan_sign: int  # +1 camera pans right, -1 left, 0 static
    trajectory: str


def place_x(rng: np.random.Generator, stage: Stage, half: float) -> float:
    """Horizontal placement: pan clips keep the event in view; pan_return pans away from it."""
    w = stage.width
    if stage.trajectory == "pan":
        x = w / 2 + stage.pan_sign * rng.uniform(0.0, 0.15) * w
    elif stage.trajectory == "pan_return":
        x = w / 2 - stage.pan_sign * rng.uniform(0.18, 0.26) * w
    else:
        x = rng.uniform(0.35, 0.65) * w
    lo, hi = half + 8 * stage.unit, w - half - 8 * stage.unit
    return float(np.clip(x, lo, hi)) if lo < hi else w / 2


def fixed_point(pts: np.ndarray, origin: tuple[float, float]) -> np.ndarray:
    """Points -> int32 polygon in fixed point (4 fractional bits) relative to origin."""
    return np.rint((np.asarray(pts) - np.array(origin)) * 16).astype(np.int32)


@dataclass
class Plane:
    """n . X = offset, with in-plane axes and an affine map from plane coordinates to texture pixels."""

    normal: np.ndarray  # (3,)
    offset: float
    axes: np.ndarray  # (2,3) orthonormal, orthogonal to normal
    to_tex: np.ndarray  # (3,3)

    def pixel_to_plane(self, k_inv: np.ndarray, rot: np.ndarray, centre: np.ndarray) -> np.ndarray:
        """Homography: image pixel -> homogeneous plane coordinates (u, v, 1), ray-plane intersection."""
        n = self.normal
        m = np.outer(centre, n) + (self.offset - float(n @ centre)) * np.eye(3)
        return np.vstack([self.axes @ m, n[None, :]]) @ rot @ k_inv

    def pixel_to_tex(self, k_inv: np.ndarray, rot: np.ndarray, centre: np.ndarray) -> np.ndarray:
        """The exact plane-induced homography from frame pixels to texture pixels (warp inverse map)."""
        return self.to_tex @ self.pixel_to_plane(k_inv, rot, centre)

    def depth(self, k: np.ndarray, rot: np.ndarray, centre: np.ndarray, rows: slice, width: int,
              out: np.ndarray | None = None) -> np.ndarray:
        """z-depth of the plane at the pixel centres of ``rows`` (inf where the ray misses it)."""
        a, b, c = rot.T @ self.normal
        xs = ((np.arange(width) - k[0, 2]) * (a / k[0, 0])).astype(np.float32)
        ys = ((np.arange(rows.start, rows.stop) - k[1, 2]) * (b / k[1, 1]) + c).astype(np.float32)
        den = np.add(xs[None, :], ys[:, None], out=out)
        num = np.float32(self.offset - float(self.normal @ centre))
        miss = den <= 1e-6 if min(xs.min() + ys.min(), xs.max() + ys.min(), xs.min() + ys.max()) <= 1e-6 else None
        with np.errstate(divide="ignore", invalid="ignore"):
            depth = np.divide(num, den, out=den)
        if miss is not None:
            depth[miss] = np.inf
        return depth


def border_pixels(height: int, width: int, per_edge: int = 24) -> np.ndarray:
    """(3,M) homogeneous pixels sampled along the frame border."""
    xs, ys = np.linspace(0, width - 1, per_edge), np.linspace(0, height - 1, per_edge)
    pts = np.concatenate([np.stack([xs, np.zeros_like(xs)], 1), np.stack([xs, np.full_like(xs, height - 1)], 1),
                          np.stack([np.zeros_like(ys), ys], 1), np.stack([np.full_like(ys, width - 1), ys], 1)])
    return np.vstack([pts.T, np.ones(len(pts))])


def plane_extent(plane: Plane, k: np.ndarray, poses: np.ndarray, height: int, width: int) -> np.ndarray:
    """(M,2) plane coordinates of the frame border over all poses (rays that hit the plane)."""
    k_inv, border = np.linalg.inv(k), border_pixels(height, width)
    out = []
    for pose in np.unique(poses, axis=0):
        uvw = plane.pixel_to_plane(k_inv, pose[:3, :3], pose[:3, 3]) @ border
        hit = uvw[2] > 1e-6
        out.append((uvw[:2, hit] / uvw[2, hit]).T)
    return np.concatenate(out) if out else np.zeros((0, 2))


def random_colour(rng: np.random.Generator, sat: tuple[float, float], val: tuple[float, float],
                  hue: float | None = None) -> tuple[int, int, int]:
    """An RGB colour from HSV ranges (hue in [0, 1))."""
    h = rng.uniform(0, 1) if hue is None else hue % 1.0
    hsv = np.array([[[h * 180.0, rng.uniform(*sat) * 255.0, rng.uniform(*val) * 255.0]]], np.float32)
    rgb = cv2.cvtColor(np.clip(hsv, 0, 255).astype(np.uint8), cv2.COLOR_HSV2RGB)[0, 0]
    return int(rgb[0]), int(rgb[1]), int(rgb[2])


def _smooth_field(rng: np.random.Generator, height: int, width: int, cell: int, amp: float) -> np.ndarray:
    """Low-frequency colour variation (no per-pixel noise: H.264 cost explodes on noise)."""
    coarse = rng.normal(0.0, amp, (height // cell + 2, width // cell + 2, 3)).astype(np.float32)
    return cv2.resize(coarse, (width, height), interpolation=cv2.INTER_CUBIC)


def wall_texture(rng: np.random.Generator, height: int, width: int, unit: float) -> np.ndarray:
    """Painted wall with posters, discs, checkers, text lines and triangles on a jittered grid."""
    top, bottom = random_colour(rng, (0.1, 0.35), (0.6, 0.8)), random_colour(rng, (0.1, 0.35), (0.5, 0.75))
    w = np.linspace(0.0, 1.0, height, dtype=np.float32)[:, None, None]
    grad = (1 - w) * np.array(top, np.float32) + w * np.array(bottom, np.float32)
    tex = np.clip(grad + _smooth_field(rng, height, width, 96, 10.0), 0, 255).astype(np.uint8)
    cell = max(int(110 * unit), 24)
    aa = cv2.LINE_AA
    for gy in range(0, height, cell):
        for gx in range(0, width, cell):
            if rng.uniform() < 0.15:
                continue
            cx, cy = gx + rng.uniform(0.25, 0.75) * cell, gy + rng.uniform(0.25, 0.75) * cell
            col = random_colour(rng, (0.2, 0.9), (0.15, 0.95))
            ink = random_colour(rng, (0.0, 0.6), (0.05, 0.35))
            kind = rng.integers(0, 6)
            s = rng.uniform(0.3, 0.85) * cell
            p0, p1 = (int(cx - s / 2), int(cy - s / 2.6)), (int(cx + s / 2), int(cy + s / 2.6))
            if kind == 0:  # poster with a frame and an inner shape
                cv2.rectangle(tex, p0, p1, col, -1, aa)
                cv2.rectangle(tex, p0, p1, ink, max(1, int(3 * unit)), aa)
                cv2.circle(tex, (int(cx), int(cy)), int(s / 6), ink, -1, aa)
            elif kind == 1:  # disc with a ring
                cv2.circle(tex, (int(cx), int(cy)), int(s / 2.4), col, -1, aa)
                cv2.circle(tex, (int(cx), int(cy)), int(s / 4), ink, max(1, int(2 * unit)), aa)
            elif kind == 2:  # checkerboard: strong corners
                n, q = 4, s / 4
                for i in range(n):
                    for j in range(n):
                        c = col if (i + j) % 2 else ink
                        a = (int(cx - s / 2 + i * q), int(cy - s / 2 + j * q))
                        cv2.rectangle(tex, a, (int(a[0] + q), int(a[1] + q)), c, -1)
            elif kind == 3:  # lines of "text"
                for r in range(int(rng.integers(2, 5))):
                    y = int(cy - s / 3 + r * s / 5)
                    x = cx - s / 2
                    while x < cx + s / 2:
                        ln = rng.uniform(0.08, 0.25) * s
                        cv2.line(tex, (int(x), y), (int(min(x + ln, cx + s / 2)), y), ink, max(1, int(3 * unit)), aa)
                        x += ln + 0.06 * s
            elif kind == 4:  # triangle
                ang = rng.uniform(0, 2 * np.pi) + np.arange(3) * 2 * np.pi / 3
                pts = np.stack([cx + s / 2 * np.cos(ang), cy + s / 2 * np.sin(ang)], 1).astype(np.int32)
                cv2.fillPoly(tex, [pts], col, aa)
                cv2.polylines(tex, [pts], True, ink, max(1, int(2 * unit)), aa)
            else:  # cross
                t = max(2, int(s / 7))
                cv2.line(tex, (int(cx - s / 2), int(cy)), (int(cx + s / 2), int(cy)), col, t, aa)
                cv2.line(tex, (int(cx), int(cy - s / 2)), (int(cx), int(cy + s / 2)), col, t, aa)
    return cv2.GaussianBlur(tex, (0, 0), 0.7)


def floor_texture(rng: np.random.Generator, height: int, width: int, plank_px: float) -> np.ndarray:
    """Wooden planks running towards the wall: seams, staggered joints and knots."""
    hue = rng.uniform(0.04, 0.11)
    tex = np.zeros((height, width, 3), np.uint8)
    x, aa = 0.0, cv2.LINE_AA
    seam = random_colour(rng, (0.3, 0.6), (0.1, 0.25), hue)
    while x < width:
        pw = plank_px * rng.uniform(0.8, 1.2)
        y = -rng.uniform(0, 3) * plank_px
        while y < height:
            ln = plank_px * rng.uniform(3, 7)
            col = random_colour(rng, (0.3, 0.55), (0.4, 0.7), hue)
            cv2.rectangle(tex, (int(x), int(y)), (int(x + pw), int(y + ln)), col, -1)
            cv2.line(tex, (int(x), int(y)), (int(x + pw), int(y)), seam, 2, aa)
            for _ in range(int(rng.integers(0, 3))):
                kc = (int(x + rng.uniform(0.2, 0.8) * pw), int(y + rng.uniform(0.1, 0.9) * ln))
                cv2.ellipse(tex, kc, (int(pw / 8) + 1, int(pw / 5) + 1), 0, 0, 360, seam, -1, aa)
            y += ln
        cv2.line(tex, (int(x), 0), (int(x), height), seam, 2, aa)
        x += pw
    tex = np.clip(tex + _smooth_field(rng, height, width, 64, 8.0), 0, 255).astype(np.uint8)
    return cv2.GaussianBlur(tex, (0, 0), 1.0)


def stamp_marker(tex: np.ndarray, x: float, y: float, unit: float) -> None:
    """Black disc + black ring on a white pad, analytically anti-aliased so its centroid is exactly (x, y)."""
    r_in, r_ring0, r_ring1, r_pad = 3.5 * unit, 6.5 * unit, 8.0 * unit, 10.5 * unit
    half = int(math.ceil(r_pad + 2))
    x0, y0 = int(round(x)) - half, int(round(y)) - half
    ys, xs = np.mgrid[y0:y0 + 2 * half + 1, x0:x0 + 2 * half + 1]
    d = np.hypot(xs - x, ys - y)

    def cover(r: float) -> np.ndarray:
        return np.clip(r + 0.5 - d, 0.0, 1.0)

    dark = cover(r_in) + cover(r_ring1) - cover(r_ring0)
    pad = cover(r_pad)[..., None]
    patch = tex[y0:y0 + 2 * half + 1, x0:x0 + 2 * half + 1].astype(np.float64)
    out = patch * (1 - pad) + pad * (255.0 * (1 - dark))[..., None]
    tex[y0:y0 + 2 * half + 1, x0:x0 + 2 * half + 1] = np.clip(np.rint(out), 0, 255).astype(np.uint8)


def place_markers(rng: np.random.Generator, height: int, width: int, floor_y: float, unit: float,
                  keep_out: list[tuple[int, int, int, int]]) -> np.ndarray:
    """4-8 marker centres (frame-0 pixels, on a 1/16 px grid) spread over the visible wall, off the event."""
    want, pad, min_gap = int(rng.integers(4, 9)), 16 * unit, 70 * unit
    pts: list[tuple[float, float]] = []
    for _ in range(4000):
        if len(pts) == want:
            break
        x = rng.uniform(30 * unit, width - 30 * unit)
        y = rng.uniform(24 * unit, floor_y - 24 * unit)
        x, y = round(x * 16) / 16, round(y * 16) / 16
        if any(x0 - pad < x < x1 + pad and y0 - pad < y < y1 + pad for x0, y0, x1, y1 in keep_out):
            continue
        if all(math.hypot(x - px, y - py) >= min_gap for px, py in pts):
            pts.append((x, y))
    return np.array(pts, np.float64).reshape(-1, 2)
