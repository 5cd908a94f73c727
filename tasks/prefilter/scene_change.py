"""Near-static scenes: how much of the view the scene's dynamics take up, at a time and by the window's end.

Geometric motion passes a window on its dynamic region (the union, over the window, of what moved) and how long
something moves. A near-static view where one small object drifts across, or a distant walker crosses, has a
large union (the object travels) and moves all the time, yet at any moment almost all of the frame stands still
and the window ends as it began. Two measures of the scene as a whole tell it apart:

- ``active fraction``: the part of the frame that moves between compared frames, averaged over the window (the
  space-time volume of motion): a hand turning a cup, a crowd, a bird filling the view;
- ``lasting change``: the part of the frame whose content differs between the window's first and last frame once
  the camera's motion and a global gain are taken out: a glass filling, a plant growing, a box opened.

The window's dynamic extent is the larger of the two; the motion stage turns a window down as ``static_scene``
when it stays below ``prefilter.motion.min_dynamic_extent``, unless light, weather or texture pass it on their own
(foliage in wind, a lamp switched off). The threshold comes from measured distributions of both kinds of windows
on the labelled real footage: ``python -m benchmarks.static_scenes``.
"""
from __future__ import annotations

import cv2
import numpy as np

_CHANGE = 12.0  # grey levels a lasting change must exceed (sensor noise and x264 ringing stay below)
_LOG_OFFSET = 8.0  # as the light tracker: darks are noisy, and black has no ratio


def lasting_change(first: np.ndarray, last: np.ndarray, first_to_last: np.ndarray) -> float:
    """Fraction of the view (where the first frame, carried by the camera, still covers the last) whose content
    changed by more than sensor noise between the two small grey frames, after a global gain."""
    h, w = last.shape
    warped = cv2.warpPerspective(first, first_to_last, (w, h), borderMode=cv2.BORDER_REPLICATE).astype(np.float32)
    covered = cv2.warpPerspective(np.ones((h, w), np.uint8), first_to_last, (w, h))
    valid = cv2.erode(covered, np.ones((3, 3), np.uint8), iterations=2).astype(bool)
    if valid.sum() < 0.05 * valid.size:
        return 0.0
    end = last.astype(np.float32)
    gain = float(np.median(end[valid] + _LOG_OFFSET) / max(1e-3, np.median(warped[valid] + _LOG_OFFSET)))
    changed = (np.abs((warped + _LOG_OFFSET) * gain - _LOG_OFFSET - end) > _CHANGE) & valid
    changed = cv2.morphologyEx(changed.astype(np.uint8), cv2.MORPH_OPEN, np.ones((3, 3), np.uint8))
    return float(changed.sum() / valid.sum())


def dynamic_extent(active_fraction: float, lasting: float) -> float:
    """The larger share of the view: what moves at a time (on average), or what ends changed."""
    return max(active_fraction, lasting)
