"""What a scene-cut detector returns: transitions in frame indices, and the frames a window must not contain."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Transition:
    """Frames ``start..end`` (inclusive) belong to the change; the new shot starts at ``end + 1``."""

    start: int
    end: int

    @property
    def soft(self) -> bool:
        return self.end > self.start


@dataclass
class CutResult:
    transitions: list[Transition]
    detector: str  # the detector that ran (differs from the configured one after a fallback)
    probabilities: np.ndarray | None = None  # (N,) per-frame transition probability (learned detectors; 0: unscored)
    fallback_reason: str | None = None
    model_frames: int | None = None  # frames the learned model scored (the cascade's share of N); None: no model

    def model_fraction(self, num_frames: int) -> float | None:
        """The share of the frames the learned model scored (1.0 for a full scan, 0.0 when the screen ruled every
        frame out); None for detectors without a model."""
        return None if self.model_frames is None else round(self.model_frames / max(num_frames, 1), 4)


def boundary_frames(transitions: list[Transition], num_frames: int) -> list[int]:
    """Frames a cut-free window must not contain (past its first frame): new-shot starts, soft-transition starts."""
    frames = set()
    for t in transitions:
        frames.add(t.end + 1)
        if t.soft:
            frames.add(t.start)
    return sorted(f for f in frames if 0 < f < num_frames)
