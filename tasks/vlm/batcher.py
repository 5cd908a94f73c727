"""Batches filled across clips: every caller in this process shares one backend, and their windows share batches.

Judging used to run per clip, one clip's windows per batch (at most ``normalise.windows_per_video``, 2 by default,
against ``vlm.batch_size`` 4). ``SharedJudge.judge`` queues a clip's windows; whichever caller finds no batch
running becomes the runner and drains the queue in batches of ``vlm.batch_size`` windows, waiting up to
``vlm.batch_wait_s`` for windows of other clips before a short batch runs (only once two callers have been seen at
the same time, so a lone caller never waits). Callers whose windows were judged by
another caller's batch just collect their judgements.

The limit is the concurrency the executor gives: clips judged at the same time in this process (threads) share
batches; the local executor curates one clip at a time, so there a batch still holds one clip's windows, and Ray
clip tasks run in separate processes, each with its own backend. With the openai backend the server is the
shared batcher: vLLM batches concurrent requests from every process (continuous batching).
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

from schemas.config import VLMConfig
from schemas.vlm import VLMJudgement
from tasks.vlm.backends import VLMBackend
from tasks.vlm.judge import ClipInput, judge_clips
from tasks.vlm.prompts import EventCatalog


@dataclass
class _Job:
    clips: list[ClipInput]
    results: list[VLMJudgement | None] = field(default_factory=list)
    remaining: int = 0
    error: BaseException | None = None

    def __post_init__(self) -> None:
        self.results = [None] * len(self.clips)
        self.remaining = len(self.clips)


class SharedJudge:
    """A thread-safe front of one backend that merges concurrent callers' windows into full batches."""

    def __init__(self, backend: VLMBackend, config: VLMConfig, catalog: EventCatalog) -> None:
        self.backend, self.config, self.catalog = backend, config, catalog
        self._cv = threading.Condition()
        self._queue: list[tuple[_Job, int]] = []
        self._running = False
        self._active = 0  # callers inside judge() now
        self._concurrent = False  # ever two callers at once: only then can waiting gather other clips' windows
        self.batch_sizes: list[int] = []  # windows per batch run, for benchmarks and tests

    def judge(self, clips: list[ClipInput]) -> list[VLMJudgement]:
        """Judgements for ``clips`` in order; blocks until they are done (possibly in another caller's batch)."""
        if not clips:
            return []
        job = _Job(clips)
        with self._cv:
            self._active += 1
            self._concurrent = self._concurrent or self._active > 1
            self._queue.extend((job, i) for i in range(len(clips)))
            self._cv.notify_all()
            while job.remaining and self._running:
                self._cv.wait()
            lead = bool(job.remaining)
            if lead:
                self._running = True
        try:
            if lead:
                self._drain()
        finally:
            with self._cv:
                self._running = False if lead else self._running
                self._active -= 1
                self._cv.notify_all()
        if job.error is not None:
            raise job.error
        return [r for r in job.results if r is not None]

    def _take(self) -> list[tuple[_Job, int]]:
        """Up to batch_size queued windows, after waiting up to batch_wait_s for a short batch to fill. A judge
        that never had two callers at once does not wait: nobody else could add windows (the local executor)."""
        size = self.config.batch_size
        deadline = time.monotonic() + (self.config.batch_wait_s if self._concurrent else 0.0)
        with self._cv:
            while len(self._queue) < size and (left := deadline - time.monotonic()) > 0:
                self._cv.wait(timeout=left)
            batch, self._queue = self._queue[:size], self._queue[size:]
        return batch

    def _drain(self) -> None:
        while batch := self._take():
            try:
                judgements = judge_clips([job.clips[i] for job, i in batch], self.backend, self.config, self.catalog)
                error = None
            except BaseException as exc:  # noqa: BLE001 - handed to every caller whose windows were in the batch
                judgements, error = [None] * len(batch), exc
            with self._cv:
                self.batch_sizes.append(len(batch))
                for (job, i), judgement in zip(batch, judgements):
                    job.results[i] = judgement
                    job.error = job.error or error
                    job.remaining -= 1
                self._cv.notify_all()
