"""The cheap first stage of the scene-cut cascade: which frames could hold a transition at all.

It reads the 48x27 RGB frames TransNetV2 reads anyway (no extra decode) and measures, for each frame ``i``, how far
it is from frame ``i - span``:

- ``pixel_1``: mean absolute difference to the previous frame (0-255): hard cuts, flashes, whip pans;
- ``hist_1``, ``hist_4``, ``hist_12``: colour-histogram distance (per channel, 16 bins, half L1 in 0-1) over 1, 4
  and 12 frames: cuts, and the slow change of a dissolve or a fade, which barely moves from one frame to the next;
- ``coarse_4``: mean absolute difference over 4 frames on a 12x7 grid: a dissolve between shots of the same
  palette, which histograms miss.

A frame is a candidate when any statistic passes its threshold; the candidate span covers both frames compared
(``i - span .. i``) plus ``MARGIN``. The screen's job is recall: a false candidate only costs one TransNetV2
window; a missed transition is a different result from the full scan. Each threshold is half the smallest value
its statistic reaches at any transition the full TransNetV2 scan reports on the calibration set (every labelled
clip of tests/data/real and the edited cases of tests/prefilter/edited_footage.py): every statistic alone finds
every calibrated transition with a factor 2 to spare. ``python -m benchmarks.prefilter --calibrate-screen``
prints the measured minima.
"""
from __future__ import annotations

import cv2
import numpy as np

SPANS = {"pixel_1": 1, "hist_1": 1, "hist_4": 4, "hist_12": 12, "coarse_4": 4}
THRESHOLDS = {"pixel_1": 3.7, "hist_1": 0.06, "hist_4": 0.064, "hist_12": 0.064, "coarse_4": 7.9}
MARGIN = 2  # frames added on each side of a candidate span
COARSE_SIZE = (12, 7)


def _histograms(small: np.ndarray) -> np.ndarray:
    """(N, 3, 16) per-channel histograms, each summing to 1."""
    n, h, w, _ = small.shape
    bins = (small >> 4).reshape(n, h * w, 3).astype(np.int64)
    index = bins + np.arange(3) * 16 + (np.arange(n) * 48)[:, None, None]
    counts = np.bincount(index.ravel(), minlength=n * 48).reshape(n, 3, 16)
    return counts.astype(np.float32) / (h * w)


def _distance_over(values: np.ndarray, span: int, reduce) -> np.ndarray:
    out = np.zeros(len(values), np.float32)
    if len(values) > span:
        out[span:] = reduce(values[span:] - values[:-span])
    return out


def screen_statistics(small: np.ndarray) -> dict[str, np.ndarray]:
    """Per-frame statistics of ``small`` ((N, 27, 48, 3) uint8): value ``i`` compares frame ``i`` with
    frame ``i - SPANS[name]`` (0 where there is no such frame)."""
    pixels = small.astype(np.float32)
    coarse = np.stack([cv2.resize(f, COARSE_SIZE, interpolation=cv2.INTER_AREA) for f in pixels]) if len(small) \
        else pixels
    hist = _histograms(small)
    mean_abs = lambda d: np.abs(d).mean(axis=tuple(range(1, d.ndim)))  # noqa: E731
    half_l1 = lambda d: 0.5 * np.abs(d).sum(axis=2).mean(axis=1)  # noqa: E731
    return {"pixel_1": _distance_over(pixels, 1, mean_abs), "hist_1": _distance_over(hist, 1, half_l1),
            "hist_4": _distance_over(hist, 4, half_l1), "hist_12": _distance_over(hist, 12, half_l1),
            "coarse_4": _distance_over(coarse, 4, mean_abs)}


def candidate_mask(small: np.ndarray, thresholds: dict[str, float] = THRESHOLDS) -> np.ndarray:
    """(N,) bool: frames the screen cannot rule out as part of a transition."""
    mask = np.zeros(len(small), bool)
    for name, values in screen_statistics(small).items():
        span = SPANS[name]
        for i in np.flatnonzero(values > thresholds[name]):
            mask[max(0, i - span - MARGIN):i + MARGIN + 1] = True
    return mask
