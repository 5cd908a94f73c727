"""Means with percentile-bootstrap confidence intervals over examples (Appendix D, G.2)."""
from __future__ import annotations

import numpy as np


def bootstrap_ci(values: np.ndarray, resamples: int, confidence: float, seed: int) -> tuple[float, float, float]:
    """(mean, low, high) of the finite ``values``; resample examples with replacement ``resamples`` times with
    ``np.random.default_rng(seed)``, take the (1 - c)/2 and (1 + c)/2 percentiles (numpy's linear interpolation)
    of the resampled means. NaN for all three when there is no finite value."""
    values = np.asarray(values, dtype=np.float64)
    values = values[np.isfinite(values)]
    if values.size == 0:
        return float("nan"), float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    index = rng.integers(0, values.size, size=(resamples, values.size))
    means = values[index].mean(axis=1)
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(means, [tail, 100 - tail])
    return float(values.mean()), float(low), float(high)
