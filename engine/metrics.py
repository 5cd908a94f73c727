"""Per-stage figures of one executor run: busy fraction, items/s, queue depths. Both backends fill these, and
the report, metrics.json and the Prefect artifact show them, so a user sees which stage is the bottleneck."""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any


@dataclass
class StageMetrics:
    name: str
    workers: int = 1
    cpus: float = 1.0
    gpus: float = 0.0
    batch_size: int = 1
    items: int = 0
    batches: int = 0
    failed: int = 0
    passed: int = 0  # records that went through untouched (failed earlier, or the stage's result was cached)
    busy_s: float = 0.0  # summed over workers: time inside process_batch
    queue_samples: int = 0
    queue_total: int = 0  # summed queue depth over samples (records waiting for this stage)
    queue_max: int = 0

    def record_batch(self, size: int, seconds: float, failed: int = 0, passed: int = 0) -> None:
        self.items += size
        self.batches += 1
        self.failed += failed
        self.passed += passed
        self.busy_s += seconds

    def sample_queue(self, depth: int) -> None:
        self.queue_samples += 1
        self.queue_total += depth
        self.queue_max = max(self.queue_max, depth)

    def summary(self, wall_s: float) -> dict[str, Any]:
        capacity = max(wall_s * self.workers, 1e-9)
        return {
            "workers": self.workers, "cpus": self.cpus, "gpus": self.gpus, "batch_size": self.batch_size,
            "items": self.items, "batches": self.batches, "failed": self.failed, "passed": self.passed,
            "busy_s": round(self.busy_s, 3), "busy_fraction": round(min(self.busy_s / capacity, 1.0), 3),
            "items_per_s": round(self.items / wall_s, 3) if wall_s > 0 else 0.0,
            "mean_batch": round(self.items / self.batches, 2) if self.batches else 0.0,
            "queue_mean": round(self.queue_total / self.queue_samples, 2) if self.queue_samples else 0.0,
            "queue_max": self.queue_max,
            # seconds of one worker per item: the stage's capacity is workers / this
            "seconds_per_item": round(self.busy_s / (self.items - self.passed), 4) if self.items > self.passed
            else 0.0,
        }


@dataclass
class PipelineMetrics:
    """What ``engine.executor.run_pipeline`` measured; ``summary()`` is what the report shows."""

    backend: str
    stages: dict[str, StageMetrics] = field(default_factory=dict)
    started: float = field(default_factory=time.perf_counter)
    ended: float | None = None
    in_flight_max: int = 0
    nodes: dict[str, dict[str, int]] = field(default_factory=dict)  # Ray node id -> stage -> batches it ran
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def stage(self, name: str) -> StageMetrics:
        return self.stages.setdefault(name, StageMetrics(name))

    def node_task(self, node: str, stage: str) -> None:
        per_stage = self.nodes.setdefault(node or "unknown", {})
        per_stage[stage] = per_stage.get(stage, 0) + 1

    def finish(self) -> None:
        self.ended = time.perf_counter()

    @property
    def wall_s(self) -> float:
        return (self.ended or time.perf_counter()) - self.started

    def bottleneck(self) -> str | None:
        busy = {name: m.busy_s / max(m.workers, 1) for name, m in self.stages.items() if m.items}
        return max(busy, key=busy.get) if busy else None  # type: ignore[arg-type]

    def summary(self) -> dict[str, Any]:
        wall = self.wall_s
        summary = {"backend": self.backend, "wall_s": round(wall, 3), "in_flight_max": self.in_flight_max,
                   "bottleneck": self.bottleneck(),
                   "stages": {name: m.summary(wall) for name, m in self.stages.items()}}
        if self.nodes:  # the Ray backend: where the work ran (a node added mid-run shows here)
            summary["nodes"] = {node: {"tasks": sum(stages.values()), "stages": dict(sorted(stages.items()))}
                                for node, stages in sorted(self.nodes.items())}
        return summary
