"""The one interface every VLM backend implements, the request it takes, and ``make_backend(config)``.

Contract of ``generate``: one entry per request, in order: the raw answer text, or a ``VLMCallError`` for a request
that failed after the backend's own bounded retries. Raising means the whole batch failed (e.g. out of memory); the
judge then isolates the windows by retrying them one by one.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np

from schemas.config import VLMConfig
from tasks.vlm.prompts import ChatTurn


class VLMCallError(Exception):
    """A request that failed after the backend's retries; the message names the backend and model."""


@dataclass
class VLMRequest:
    """One clip to judge: frames already subsampled to ``config.num_frames``, and the conversation so far."""

    frames: np.ndarray  # (T,H,W,3) uint8 RGB
    turns: list[ChatTurn]  # the frames belong to the first user turn
    duration_s: float = 81 / 16  # real time the frames span, for the video timestamps
    request_id: str = ""

    def __post_init__(self) -> None:
        if self.frames.ndim != 4 or self.frames.shape[-1] != 3 or self.frames.dtype != np.uint8:
            raise ValueError(f"frames must be (T,H,W,3) uint8, got {self.frames.shape} {self.frames.dtype}")
        if not any(turn.role == "user" for turn in self.turns):
            raise ValueError("a request needs a user turn")


@dataclass
class Usage:
    """Counters a backend keeps, for benchmarks and logs."""

    requests: int = 0
    failures: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    seconds: float = 0.0
    extra: dict[str, float] = field(default_factory=dict)


@runtime_checkable
class VLMBackend(Protocol):
    name: str
    model: str
    usage: Usage

    def generate(self, requests: list[VLMRequest]) -> list[str | VLMCallError]: ...


def subsample_indices(total: int, count: int) -> np.ndarray:
    """``count`` evenly spaced frame indices over ``total`` frames, first and last included."""
    if total < 1:
        raise ValueError("no frames")
    return np.linspace(0, total - 1, num=min(count, total)).round().astype(np.int64)


def subsample_frames(frames: np.ndarray, count: int) -> np.ndarray:
    """Evenly spaced frames; a clip that already has ``count`` frames is returned as is (no copy)."""
    if len(frames) == count:
        return frames
    return np.ascontiguousarray(frames[subsample_indices(len(frames), count)])


def fit_size(height: int, width: int, min_pixels: int, max_pixels: int, factor: int = 32) -> tuple[int, int]:
    """(h, w) near the input's aspect, multiples of ``factor`` (Qwen3-VL: patch 16 x merge 2), area in budget."""
    area = height * width
    scale = 1.0
    if area > max_pixels:
        scale = (max_pixels / area) ** 0.5
    elif area < min_pixels:
        scale = (min_pixels / area) ** 0.5
    h = max(factor, int(height * scale / factor) * factor)
    w = max(factor, int(width * scale / factor) * factor)
    return h, w


def make_backend(config: VLMConfig) -> VLMBackend:
    """The backend ``config.backend`` names, serving ``config.model``. Loads weights now (transformers)."""
    if not config.model:
        raise ValueError("vlm.model is empty: set a hub id or local path (transformers) "
                         "or a served model name (openai)")
    if config.backend == "transformers":
        from tasks.vlm.transformers_backend import TransformersBackend
        return TransformersBackend(config)
    if config.backend == "openai":
        from tasks.vlm.openai_backend import OpenAIBackend
        return OpenAIBackend(config)
    raise ValueError(f"unknown vlm.backend {config.backend!r}")
