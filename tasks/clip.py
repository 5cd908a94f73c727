"""What every stage shares: the clip record passed between stages, outcomes, and per-window error capture.

A stage takes a ``Clip`` and returns it with its windows filtered or enriched. A window that a stage turns down
leaves as a *rejected* outcome with a reason; a window on which a stage raises leaves as *failed* with the
error. No stage raises for one bad window, so the run goes on and every input ends in the manifest.
"""
from __future__ import annotations

import functools
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from schemas.manifest import ManifestRow
from tasks.records import GroundTruth, NativeGeometry, SourceFacts, SourceItem, Window


class Reject(Exception):
    """Raised by a window function to turn a window down with a stable reason code."""

    def __init__(self, reason: str, detail: str = "", scores: dict[str, float] | None = None):
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail
        self.scores = scores or {}


@dataclass
class Outcome:
    """A window (or an input with no window) that left the pipeline before packing."""

    status: Literal["rejected", "failed"]
    reason: str
    window: int | None = None
    error: str | None = None
    stage: str = ""
    span_s: tuple[float, float] | None = None
    scores: dict[str, float] = field(default_factory=dict)
    tags: list[str] = field(default_factory=list)
    vlm: dict[str, Any] | None = None  # the window's VLM judgement, when it was judged
    thumbnail: np.ndarray | None = None  # its audit thumbnail (VLM-judged windows)
    window_id: str | None = None
    parent_key: str | None = None  # the earlier run's sample this window was made from (a cache source)


@dataclass
class Clip:
    """One source moving through the stages: its live windows and the outcomes of those that dropped out.

    Until cut-windows hands them to the windows, the clip holds what the source stage decoded and the scene-cut
    stage found."""

    item: SourceItem
    windows: list[Window] = field(default_factory=list)
    outcomes: list[Outcome] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)  # stage -> seconds
    frames: np.ndarray | None = None  # (N,480,832,3) uint8 RGB, the whole decoded source
    facts: SourceFacts | None = None
    truth: GroundTruth | None = None  # a rendered source's exact truth (synthetic)
    native: NativeGeometry | None = None  # a source's own cameras (DL3DV, a camera file)
    cuts: list[int] = field(default_factory=list)  # first frame of each new shot
    transitions: list[tuple[int, int]] = field(default_factory=list)  # (first, last) frame of each transition
    cut_detector: str | None = None
    cut_detector_fallback: str | None = None  # why the configured detector was not used
    cut_model_fraction: float | None = None  # share of the source's frames TransNetV2 scored (the cascade's cost)
    carried: list[ManifestRow] = field(default_factory=list)  # rows an earlier run decided (a cache source's),
    # stamped with this run: the write stage records them after the clip's own

    def drop(self, window: Window, outcome: Outcome) -> None:
        outcome.window = window.index
        outcome.span_s = window.span_s
        outcome.scores = {**window.scores, **outcome.scores}
        outcome.tags = outcome.tags or list(window.tags)
        outcome.window_id = window.window_id
        outcome.parent_key = window.parent_key
        outcome.vlm = outcome.vlm if outcome.vlm is not None else window.vlm
        outcome.thumbnail = outcome.thumbnail if outcome.thumbnail is not None else window.thumbnail
        self.outcomes.append(outcome)


def describe_error(exc: BaseException) -> str:
    """One line a user can act on: the exception type, its message and where it came from."""
    frames = traceback.extract_tb(exc.__traceback__)
    where = f" (at {frames[-1].name}:{frames[-1].lineno})" if frames else ""
    return f"{type(exc).__name__}: {exc}{where}"


def per_window(name: str) -> Callable[[Callable[..., Window]], Callable[..., Clip]]:
    """Lift ``fn(window, *args) -> Window`` to ``Clip -> Clip`` with Reject/exception capture and timing.

    A caught exception's traceback keeps the raising frames, and their locals (the window's frames, ~100 MB), alive;
    where such a frame also refers to the exception (``err = Reject(...); raise err``) they form a cycle that only
    the cyclic GC frees, seconds later: resident memory then holds many clips' frames. Its frames are cleared."""

    def decorate(fn: Callable[..., Window]) -> Callable[..., Clip]:
        @functools.wraps(fn)
        def run(clip: Clip, *args: Any, **kwargs: Any) -> Clip:
            started = time.perf_counter()
            kept: list[Window] = []
            for window in clip.windows:
                try:
                    kept.append(fn(window, *args, **kwargs))
                except Reject as rej:
                    clip.drop(window, Outcome("rejected", rej.reason, error=rej.detail or None, stage=name,
                                              scores=rej.scores))
                    traceback.clear_frames(rej.__traceback__)
                except Exception as exc:  # noqa: BLE001 - one bad window must not stop the run
                    clip.drop(window, Outcome("failed", f"{name}_error", error=describe_error(exc), stage=name))
                    traceback.clear_frames(exc.__traceback__)
            clip.windows = kept
            clip.timings[name] = clip.timings.get(name, 0.0) + time.perf_counter() - started
            return clip

        return run

    return decorate
