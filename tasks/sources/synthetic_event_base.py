"""The contract of a synthetic event (``Event``, its ``Patch``) and the drawing helpers the events share.

Each event owns a region of interest (ROI, frame-0 pixels, above the floor line) and renders, for frame t,
a patch of that ROI: the wall texture with the object composited in, plus the object's alpha. The renderer
warps both with the wall homography, so mask, depth and pixels share one exact geometry.
"""
from __future__ import annotations

import abc
import math
from dataclasses import dataclass

import cv2
import numpy as np

from tasks.sources.synthetic_scene import Stage

AA = cv2.LINE_AA


def progress(rng: np.random.Generator, n: int) -> np.ndarray:
    """Strictly increasing 0 -> 1 over n frames with a random gentle acceleration."""
    u = np.arange(n, dtype=np.float64) / max(n - 1, 1)
    return u ** rng.uniform(0.8, 1.25)


def grid(roi: tuple[int, int, int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Frame-0 pixel coordinates of every ROI pixel."""
    x0, y0, x1, y1 = roi
    return np.meshgrid(np.arange(x0, x1, dtype=np.float32), np.arange(y0, y1, dtype=np.float32))


def blend(base: np.ndarray, colour: np.ndarray, cover: np.ndarray) -> np.ndarray:
    """base*(1-c) + colour*c, colour (3,) or (H,W,3)."""
    c = cover[..., None]
    return base.astype(np.float32) * (1 - c) + np.asarray(colour, np.float32) * c


def to_u8(img: np.ndarray) -> np.ndarray:
    return cv2.convertScaleAbs(img)  # rounds and saturates; inputs are never negative


@dataclass
class Patch:
    """The event's pixels at one frame: wall texture with the object composited, and the object's alpha."""

    rgb: np.ndarray  # (h,w,3) uint8
    alpha: np.ndarray  # (h,w) uint8
    x: int  # offset of the patch inside the ROI
    y: int


class Event(abc.ABC):
    """Base class: state per frame, ROI, static props, per-frame rendering and a caption."""

    family = ""
    roi: tuple[int, int, int, int]
    state: np.ndarray
    colour_name: str

    @abc.abstractmethod
    def __init__(self, rng: np.random.Generator, stage: Stage) -> None:
        """Draw the event's parameters (sizes, colours, speeds) from ``rng``."""

    def draw_static(self, tex: np.ndarray, off: tuple[int, int]) -> None:
        """Props that never change (shelf, stand, tap...) drawn into the wall texture."""

    def prepare(self, base: np.ndarray) -> None:
        """Receive the ROI of the finished static wall texture (uint8), before any render."""
        self.base = base

    @abc.abstractmethod
    def render(self, t: int) -> Patch:
        """The event's patch at frame t."""

    @abc.abstractmethod
    def caption(self) -> str:
        """Object, state variable and direction of change."""

    def _set_roi(self, x0: float, y0: float, x1: float, y1: float, stage: Stage) -> None:
        bottom = min(math.ceil(y1), math.floor(stage.floor_y) - 1)  # never below the floor line: no occlusion
        self.roi = (math.floor(x0), math.floor(y0), math.ceil(x1), bottom)
