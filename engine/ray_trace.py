"""The Ray backend's per-stage metrics, summed on the driver from the traces the records carry out of the workers.

Each record's trace lists, per stage it went through: the worker, the batch's start and duration, the batch size,
whether the record failed there, how long it waited for the stage, and the node that ran it. From these: items and batches per stage,
busy seconds (time inside ``process_batch`` summed over workers: each record carries its share of its batch),
failures, batches (tasks) per node and stage, and queue depths (records waiting for a stage, sampled every 0.1 s over the run, as the local backend
samples its queues). Clocks are the workers' wall clocks (one machine locally; NTP-close on a cluster).
"""
from __future__ import annotations

import json
import time
from typing import Any

import numpy as np

from engine.metrics import PipelineMetrics

SAMPLE_S = 0.1


class TraceTotals:
    def __init__(self, metrics: PipelineMetrics, stages: list[str]):
        self.metrics = metrics
        self.batches: dict[str, set[tuple[int, float]]] = {name: set() for name in stages}
        self.waits: dict[str, list[tuple[float, float]]] = {name: [] for name in stages}  # (queued, started)
        self.spans: list[tuple[float, float]] = []  # per record: first start, out at the driver
        self.started = time.time()

    def start(self, started: float) -> None:
        self.started = started

    def add(self, trace: str, ready: float) -> None:
        entries: list[list[Any]] = json.loads(trace)
        with self.metrics.lock:
            for name, pid, batch_start, seconds, size, failed, waited, *node in entries:
                stats = self.metrics.stage(name)
                stats.items += 1
                stats.busy_s += seconds / max(size, 1)
                stats.failed += int(bool(failed))
                batch = (int(pid), float(batch_start))
                if batch not in self.batches.setdefault(name, set()):
                    self.batches[name].add(batch)
                    stats.batches += 1
                    self.metrics.node_task(node[0] if node else "", name)
                self.waits.setdefault(name, []).append((batch_start - waited, batch_start))
            first = float(entries[0][2]) if entries else ready  # when its first stage began on it
            self.spans.append((first, time.time()))

    def finish(self) -> None:
        """Queue depths and the most inputs in flight at once, from the intervals gathered."""
        ended = time.time()
        samples = np.arange(self.started, ended, SAMPLE_S)
        with self.metrics.lock:
            for name, waits in self.waits.items():
                if not waits or not len(samples):
                    continue
                queued = np.sort(np.array([w[0] for w in waits]))
                taken = np.sort(np.array([w[1] for w in waits]))
                depth = np.searchsorted(queued, samples, "right") - np.searchsorted(taken, samples, "right")
                stats = self.metrics.stage(name)
                stats.queue_samples += len(samples)
                stats.queue_total += int(depth.sum())
                stats.queue_max = max(stats.queue_max, int(depth.max()))
            if self.spans and len(samples):
                entered = np.sort(np.array([s[0] for s in self.spans]))
                left = np.sort(np.array([s[1] for s in self.spans]))
                inside = np.searchsorted(entered, samples, "right") - np.searchsorted(left, samples, "right")
                self.metrics.in_flight_max = max(self.metrics.in_flight_max, int(inside.max()))
        self.metrics.finish()
