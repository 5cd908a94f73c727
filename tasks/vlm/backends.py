"""The one interface every VLM backend implements, and the request it takes (the factory: tasks/vlm/factory.py).

Contract of ``generate``: one entry per request, in order: the raw answer text, or a ``VLMCallError`` for a request
that failed after the backend's own bounded retries. Raising means the whole batch failed (e.g. out of memory); the
judge then isolates the windows by retrying them one by one.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np
from PIL import Image

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
    json_schema: dict[str, Any] | None = None  # the answer's schema, for servers with structured output

    def video(self, config: VLMConfig) -> VideoInput:
        """The video both backends send: same frames, same fps, same pixel budget."""
        return prepare_video(self.frames, self.duration_s, config.min_pixels, config.max_pixels)

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


def video_size(height: int, width: int, min_pixels: int, max_pixels: int, factor: int = 32) -> tuple[int, int]:
    """(h, w) of every frame the VLM sees: qwen-vl-utils' ``smart_resize`` (multiples of ``factor`` = Qwen3-VL
    patch 16 x merge 2, area within [min_pixels, max_pixels], aspect kept), so a frame already at this size
    passes through qwen-vl-utils unchanged."""
    h_bar, w_bar = max(factor, round(height / factor) * factor), max(factor, round(width / factor) * factor)
    if h_bar * w_bar > max_pixels:
        beta = math.sqrt(height * width / max_pixels)
        h_bar = max(factor, math.floor(height / beta / factor) * factor)
        w_bar = max(factor, math.floor(width / beta / factor) * factor)
    elif h_bar * w_bar < min_pixels:
        beta = math.sqrt(min_pixels / (height * width))
        h_bar, w_bar = math.ceil(height * beta / factor) * factor, math.ceil(width * beta / factor) * factor
    return h_bar, w_bar


@dataclass(frozen=True)
class VideoInput:
    """Exactly what both backends hand the model for one window: one video of evenly spaced frames at the pixel
    budget, and its frame rate in real time (frame i is at i / fps seconds)."""

    frames: np.ndarray  # (T,h,w,3) uint8 RGB, T even (Qwen3-VL merges frame pairs)
    fps: float


def prepare_video(frames: np.ndarray, duration_s: float, min_pixels: int, max_pixels: int) -> VideoInput:
    """Resize (bicubic) to ``video_size`` and pad an odd count with the last frame, as qwen-vl-utils would."""
    h, w = video_size(frames.shape[1], frames.shape[2], min_pixels, max_pixels)
    if (h, w) != frames.shape[1:3]:
        frames = np.stack([np.asarray(Image.fromarray(f).resize((w, h), Image.Resampling.BICUBIC)) for f in frames])
    if len(frames) % 2:
        frames = np.concatenate([frames, frames[-1:]])
    return VideoInput(np.ascontiguousarray(frames), len(frames) / duration_s)
