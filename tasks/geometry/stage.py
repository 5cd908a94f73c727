"""The geometry stage: Window -> Window with per-frame cameras (and depth), unless the window already knows them."""
from __future__ import annotations

from typing import Any

import numpy as np

from schemas.cameras import normalise_translations
from tasks.geometry.base import GeometryBackend, GeometryEstimate
from tasks.records import Window


def _known_record(source: str, c2w: np.ndarray) -> dict[str, Any]:
    _, centre, scale = normalise_translations(c2w)
    return {"backend": source, "known": True, "translation_centre": [float(v) for v in centre],
            "translation_scale": float(scale), "quality": {}, "ok": True, "reason": None}


def geometry_record(estimate: GeometryEstimate) -> dict[str, Any]:
    """The JSON-able ``window.geometry`` entry for an estimate."""
    return {
        "backend": estimate.backend,
        "known": True,
        "translation_centre": [float(v) for v in estimate.translation_centre],
        "translation_scale": float(estimate.translation_scale),
        "quality": {k: float(v) for k, v in estimate.quality.items()},
        "ok": bool(estimate.ok),
        "reason": estimate.reason,
    }


def apply_estimate(window: Window, estimate: GeometryEstimate) -> Window:
    """Write an estimate's arrays and record into the window (in place; returned)."""
    window.camera_c2w = estimate.camera_c2w
    window.intrinsics = estimate.intrinsics
    window.depth = estimate.depth
    window.depth_conf = estimate.depth_conf
    window.geometry = geometry_record(estimate)
    return window


def estimate_geometry(window: Window, backend: GeometryBackend | None) -> Window:
    """Fill ``window``'s cameras from ground truth, keep native ones, or estimate them with ``backend``.

    - ``window.truth`` set (synthetic): its poses/intrinsics/depth are copied where the window has none;
      geometry ``{"backend": "ground_truth", ...}``.
    - ``window.camera_c2w`` already set (a source with native geometry): kept; ``{"backend": "native", ...}``.
    - ``backend`` None (config ``backend: none``): ``{"backend": "none", "known": False}``.
    - otherwise the backend's estimate, gated (``ok`` / ``reason``); an exception is recorded as
      ``reason = "geometry_error"`` rather than raised, so one bad window does not stop a run.
    """
    if window.truth is not None:
        truth = window.truth
        if window.camera_c2w is None:
            window.camera_c2w = np.asarray(truth.camera_c2w, np.float32)
            window.intrinsics = np.asarray(truth.intrinsics, np.float32)
            window.depth = None if truth.depth is None else np.asarray(truth.depth, np.float32)
        window.geometry = _known_record("ground_truth", window.camera_c2w)
        return window
    if window.camera_c2w is not None:
        window.geometry = _known_record("native", window.camera_c2w)
        return window
    if backend is None:
        window.geometry = {"backend": "none", "known": False}
        return window
    try:
        if getattr(backend, "accepts_dynamic_mask", False):  # track the camera on the static scene only
            dynamic = window.dynamic_mask if window.dynamic_mask is not None else window.dynamic_masks
            estimate = backend.estimate(window.frames, dynamic=dynamic)
        else:
            estimate = backend.estimate(window.frames)
    except Exception as exc:  # noqa: BLE001 - recorded per window; the run goes on
        window.geometry = {"backend": backend.name, "known": False, "ok": False, "reason": "geometry_error",
                           "error": f"{type(exc).__name__}: {exc}"[:500]}
        return window
    return apply_estimate(window, estimate)
