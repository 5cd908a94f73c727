"""The local backend: every stage has its own worker threads, joined by bounded queues.

While one clip encodes, the next decodes and the one after that is analysed: the heavy work (PyAV decode and
x264 encode, OpenCV, torch) runs in C with the GIL released, so threads fill every core without copying frames
between processes. Memory stays flat: at most ``max_in_flight`` records are inside the pipeline at once
(admission waits for a finished one), and every queue is bounded.
"""
from __future__ import annotations

import queue
import threading
import time
from collections.abc import Iterable, Iterator
from typing import Any

from engine.metrics import PipelineMetrics
from engine.process_memory import bound_malloc, release_free_memory
from engine.stage import Failed, ProcessingStage, apply_stage, failure, passes_through

_END = object()
_POLL_S = 0.1


class _Crash:
    def __init__(self, exc: BaseException):
        self.exc = exc


class LocalPipeline:
    def __init__(self, stages: list[type[ProcessingStage]], workers: list[int], config: Any, run: Any,
                 max_in_flight: int, metrics: PipelineMetrics, batch_wait_s: float = 0.05):
        self.stages, self.workers, self.config, self.run = stages, workers, config, run
        self.metrics, self.batch_wait_s = metrics, batch_wait_s
        depth = max(max_in_flight, 1)
        self.queues: list[queue.Queue] = [queue.Queue(maxsize=depth) for _ in stages]
        self.results: queue.Queue = queue.Queue()  # never holds more than max_in_flight records
        self.admitted = threading.BoundedSemaphore(depth)
        self.stop = threading.Event()
        self._left = list(workers)  # workers of each stage still running
        self._inside = 0  # records admitted and not yet yielded
        self._lock = threading.Lock()
        for stage, count in zip(stages, workers):
            resources = stage.resources_for(config)
            m = metrics.stage(stage.name)
            m.workers, m.cpus, m.gpus, m.batch_size = count, resources.cpus, resources.gpus, \
                stage.batch_size_for(config)

    def _put(self, q: queue.Queue, item: Any) -> bool:
        while not self.stop.is_set():
            try:
                q.put(item, timeout=_POLL_S)
                return True
            except queue.Full:
                continue
        return False

    def _feed(self, records: Iterable[Any]) -> None:
        try:
            for record in records:
                while not self.admitted.acquire(timeout=_POLL_S):
                    if self.stop.is_set():
                        return
                with self._lock:
                    self._inside += 1
                    self.metrics.in_flight_max = max(self.metrics.in_flight_max, self._inside)
                if not self._put(self.queues[0], record):
                    return
            for _ in range(self.workers[0]):
                self._put(self.queues[0], _END)
        except BaseException as exc:  # noqa: BLE001 - e.g. a source listing that raises: the driver re-raises
            self.results.put(_Crash(exc))

    def _next_batch(self, q: queue.Queue, size: int) -> tuple[list[Any], bool]:
        """Up to ``size`` records (waiting briefly to fill a batch across clips); True when the stream ended."""
        while True:
            try:
                first = q.get(timeout=_POLL_S)
                break
            except queue.Empty:
                if self.stop.is_set():
                    return [], True
        if first is _END:
            return [], True
        batch, deadline = [first], time.perf_counter() + self.batch_wait_s
        while len(batch) < size:
            try:
                record = q.get(timeout=max(deadline - time.perf_counter(), 0.0))
            except queue.Empty:
                break
            if record is _END:
                return batch, True
            batch.append(record)
        return batch, False

    def _work(self, index: int) -> None:
        stage_cls = self.stages[index]
        source = self.queues[index]
        target = self.queues[index + 1] if index + 1 < len(self.stages) else self.results
        stats = self.metrics.stage(stage_cls.name)
        size = stage_cls.batch_size_for(self.config)
        try:
            stage = stage_cls(self.config, self.run)
            setup_error: BaseException | None = None
            try:
                stage.setup()
            except Exception as exc:  # noqa: BLE001 - every record reaching it then fails with this error
                setup_error = exc
            ended = False
            while not ended and not self.stop.is_set():
                batch, ended = self._next_batch(source, size)
                if not batch:
                    continue
                started = time.perf_counter()
                if setup_error is not None:
                    outputs = [r if isinstance(r, Failed) else failure(r, stage_cls.name, setup_error) for r in batch]
                else:
                    outputs = apply_stage(stage, batch)
                failed = sum(isinstance(o, Failed) for o in outputs) - sum(isinstance(r, Failed) for r in batch)
                with self.metrics.lock:
                    stats.record_batch(len(batch), time.perf_counter() - started, failed,
                                       sum(passes_through(stage_cls, r) for r in batch))
                for output in outputs:  # a failed record skips the remaining stages
                    self._put(self.results if isinstance(output, Failed) else target, output)
                batch = outputs = output = None  # handed on: waiting here must not keep their frames alive
                release_free_memory()  # and the batch's temporaries' pages go back
            with self._lock:
                self._left[index] -= 1
                last = self._left[index] == 0
            if last:
                if target is self.results:
                    self.results.put(_END)
                else:
                    for _ in range(self.workers[index + 1]):
                        self._put(target, _END)
        except BaseException as exc:  # noqa: BLE001 - a bug in the engine itself: stop the run loudly
            self.results.put(_Crash(exc))

    def _watch(self) -> None:
        while not self.stop.wait(_POLL_S):
            with self.metrics.lock:
                for stage_cls, q in zip(self.stages, self.queues):
                    self.metrics.stage(stage_cls.name).sample_queue(q.qsize())

    def stream(self, records: Iterable[Any]) -> Iterator[Any]:
        bound_malloc()
        threads = [threading.Thread(target=self._feed, args=(records,), name="feed", daemon=True),
                   threading.Thread(target=self._watch, name="watch", daemon=True)]
        for index, (stage_cls, count) in enumerate(zip(self.stages, self.workers)):
            threads += [threading.Thread(target=self._work, args=(index,), name=f"{stage_cls.name}-{n}",
                                         daemon=True) for n in range(count)]
        for thread in threads:
            thread.start()
        try:
            while True:
                item = self.results.get()
                if item is _END:
                    return
                if isinstance(item, _Crash):
                    raise RuntimeError(f"the local executor crashed: {item.exc!r}") from item.exc
                with self._lock:
                    self._inside -= 1
                self.admitted.release()
                yield item
        finally:
            self.stop.set()  # an interrupted run leaves no worker waiting; the ledger is the truth on rerun
            self.metrics.finish()
