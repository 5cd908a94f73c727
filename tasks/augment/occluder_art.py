"""Occluder sprites that pass for real objects: a rounded board, an ellipse (a ball, a head passing close) or a
person-sized silhouette, each with a procedural texture, body shading, a soft edge; and motion-blurred compositing.

A sprite is premultiplied colour (h,w,3) and alpha (h,w), float32, with its anchor at the array's centre.
"""
from __future__ import annotations

import cv2
import numpy as np

PERSON_ASPECT = 0.42  # silhouette width / height (shoulders and arms)
TORSO = (0.22, 0.26, 0.78, 0.62)  # the torso's box in silhouette units (x0, y0, x1, y1 of width/height)


def shape_mask(shape: str, size: tuple[int, int]) -> np.ndarray:
    """(h,w) uint8 0/255 mask of the shape filling a (w,h) canvas."""
    w, h = size
    mask = np.zeros((h, w), np.uint8)
    if shape == "rect":
        r = int(0.12 * min(w, h))
        cv2.rectangle(mask, (r, 0), (w - 1 - r, h - 1), 255, -1)
        cv2.rectangle(mask, (0, r), (w - 1, h - 1 - r), 255, -1)
        for cx, cy in ((r, r), (w - 1 - r, r), (r, h - 1 - r), (w - 1 - r, h - 1 - r)):
            cv2.circle(mask, (cx, cy), r, 255, -1)
    elif shape == "ellipse":
        cv2.ellipse(mask, (w // 2, h // 2), (w // 2, h // 2), 0, 0, 360, 255, -1)
    elif shape == "person":
        def px(x: float, y: float) -> tuple[int, int]:
            return int(x * w), int(y * h)
        cv2.circle(mask, px(0.5, 0.1), int(0.085 * h), 255, -1)  # head
        cv2.rectangle(mask, px(0.44, 0.15), px(0.56, 0.22), 255, -1)  # neck
        torso = np.array([px(0.2, 0.22), px(0.8, 0.22), px(0.78, 0.62), px(0.22, 0.62)], np.int32)
        cv2.fillConvexPoly(mask, torso, 255)
        for side in (0, 1):  # arms hang beside the torso, legs apart
            x0 = 0.02 if side == 0 else 0.82
            arm = np.array([px(x0 + 0.1, 0.23), px(x0 + 0.18, 0.24), px(x0 + 0.14, 0.58), px(x0, 0.57)], np.int32)
            cv2.fillConvexPoly(mask, arm, 255)
            lx = 0.24 if side == 0 else 0.52
            leg = np.array([px(lx, 0.6), px(lx + 0.24, 0.6), px(lx + 0.2 + 0.02 * side, 1.0),
                            px(lx + 0.02 - 0.02 * side, 1.0)], np.int32)
            cv2.fillConvexPoly(mask, leg, 255)
    else:
        raise ValueError(f"unknown occluder shape {shape!r}")
    return mask


def texture(size: tuple[int, int], rng: np.random.Generator, textured: bool) -> np.ndarray:
    """(h,w,3) float32 in [0,1]: a base colour with low-frequency blotches, fine grain and (sometimes) stripes."""
    w, h = size
    base = rng.uniform(0.08, 0.85, size=3).astype(np.float32)
    img = np.broadcast_to(base, (h, w, 3)).copy()
    if not textured:
        return img
    coarse = rng.normal(0, 1, size=(6, 6, 1)).astype(np.float32)
    blotch = cv2.resize(coarse, (w, h), interpolation=cv2.INTER_CUBIC)[..., None]
    grain = rng.normal(0, 1, size=(h, w, 1)).astype(np.float32)
    img = img * (1.0 + 0.18 * blotch + 0.05 * grain)
    if rng.random() < 0.5:  # woven / painted stripes at a random angle
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        angle = rng.uniform(0, np.pi)
        period = rng.uniform(10, 30)
        stripes = 0.5 + 0.5 * np.sin((xx * np.cos(angle) + yy * np.sin(angle)) * 2 * np.pi / period)
        tint = rng.uniform(0.6, 1.0, size=3).astype(np.float32)
        img = img * (1.0 - 0.25 * stripes[..., None] * (1.0 - tint))
    return np.clip(img, 0.0, 1.0)


def make_sprite(shape: str, size: tuple[int, int], rng: np.random.Generator, textured: bool,
                soft_px: float) -> tuple[np.ndarray, np.ndarray]:
    """Premultiplied colour and alpha of a shaded, textured shape with a soft edge; padded by the blur."""
    w, h = max(4, int(round(size[0]))), max(4, int(round(size[1])))
    pad = int(np.ceil(3 * soft_px)) + 2
    mask = np.zeros((h + 2 * pad, w + 2 * pad), np.uint8)
    mask[pad:pad + h, pad:pad + w] = shape_mask(shape, (w, h))
    dist = cv2.distanceTransform(mask, cv2.DIST_L2, 5)
    body = np.clip(dist / max(1.0, 0.25 * min(w, h)), 0.0, 1.0)  # rounded-body shading: darker at the rim
    yy, xx = np.mgrid[0:mask.shape[0], 0:mask.shape[1]].astype(np.float32)
    key = 1.0 - 0.35 * (xx / mask.shape[1] * 0.6 + yy / mask.shape[0] * 0.4)  # a key light from the top left
    shade = (0.55 + 0.45 * np.sqrt(body)) * key
    colour = texture((mask.shape[1], mask.shape[0]), rng, textured) * shade[..., None]
    alpha = mask.astype(np.float32) / 255.0
    if soft_px > 0:
        alpha = cv2.GaussianBlur(alpha, (0, 0), soft_px)
    return (colour * alpha[..., None]).astype(np.float32), alpha.astype(np.float32)


def composite(frame: np.ndarray, premult: np.ndarray, alpha: np.ndarray,
              placements: list[tuple[float, float, float]]) -> tuple[np.ndarray, np.ndarray]:
    """The frame with the sprite averaged over ``placements`` (centre x, centre y, scale): motion blur when they
    span the frame's exposure. Returns (uint8 frame, (H,W) float32 alpha actually laid over it)."""
    h, w = frame.shape[:2]
    sh, sw = alpha.shape
    acc_c = np.zeros((h, w, 3), np.float32)
    acc_a = np.zeros((h, w), np.float32)
    for cx, cy, s in placements:
        A = np.array([[s, 0.0, cx - s * (sw - 1) / 2.0], [0.0, s, cy - s * (sh - 1) / 2.0]], np.float32)
        acc_c += cv2.warpAffine(premult, A, (w, h), flags=cv2.INTER_LINEAR, borderValue=0)
        acc_a += cv2.warpAffine(alpha, A, (w, h), flags=cv2.INTER_LINEAR, borderValue=0)
    k = float(len(placements))
    acc_c /= k
    acc_a /= k
    acc_a[acc_a < 1e-3] = 0.0
    out = frame.astype(np.float32) / 255.0 * (1.0 - acc_a[..., None]) + acc_c
    return np.clip(np.rint(out * 255.0), 0, 255).astype(np.uint8), acc_a
