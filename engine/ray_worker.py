"""What runs inside the Ray workers of the Ray Data backend (``engine.ray_data``): one stage over one batch.

A batch is a dict of columns: ``record`` (the Python objects the stages exchange), ``input`` (the index of the
input the record came from), ``ready`` (when the previous stage handed the record on) and ``trace`` (JSON: one
entry per stage the record went through, with the batch's timing). The trace travels with the record to the
driver, which sums it into the per-stage metrics: every figure is measured inside the workers, nothing is
guessed on the driver.
"""
from __future__ import annotations

import dataclasses
import json
import os
import time
from typing import Any

import numpy as np

from engine.process_memory import bound_malloc, release_free_memory
from engine.stage import Failed, ProcessingStage, apply_stage, failure

RECORD, INPUT, READY, TRACE = "record", "input", "ready", "trace"
RUN_DIRS = ("shards", ".tmp", "cache/clips", "cache/windows", "cache/samples", "previews/vlm")
# Per-process cache of set-up stages for task-based stages: a Ray task worker process runs many tasks, and
# each stage is constructed and set up once per process (keyed by stage class, config and run).
_TASK_STAGES: dict[tuple[Any, ...], "StageWorker"] = {}


class Carried:
    """A record in a row. Arrow cannot convert it, so Ray Data pickles it whole: the record arrives exactly as
    it left (an int stays an int, a dict a dict), whatever type a pipeline's records have."""

    __slots__ = ("value",)

    def __init__(self, value: Any):
        self.value = value

    def __reduce__(self):
        return Carried, (self.value,)


def carried(values: list[Any]) -> np.ndarray:
    """A 1-D object array of ``values``, each in a ``Carried``."""
    array = np.empty(len(values), dtype=object)
    for index, value in enumerate(values):
        array[index] = Carried(value)
    return array


def node_run(run: Any) -> Any:
    """The run as a worker on this node writes it: its store's working folder for this node (engine.store:
    ``for_node``), never the driver's folder; a clip's outputs reach the driver only through the store."""
    store = getattr(run, "store", None)
    if store is None or not dataclasses.is_dataclass(run):
        return run
    store = store.for_node()
    if store.local == run.out:
        return run
    for sub in RUN_DIRS:
        (store.local / sub).mkdir(parents=True, exist_ok=True)
    return dataclasses.replace(run, out=store.local, store=store)


def node_id() -> str:
    """The Ray node this process runs on ("" outside Ray)."""
    import ray

    return ray.get_runtime_context().get_node_id() if ray.is_initialized() else ""


class StageWorker:
    """One worker of a stage: constructs the stage and runs ``setup()`` once, then maps batches through
    ``apply_stage`` (failed records pass through; one bad record fails alone). An actor-pool stage
    is this class itself (Ray Data builds one per actor); a task stage reaches it through ``run_task_batch``."""

    def __init__(self, stage_cls: type[ProcessingStage], config: Any, run: Any):
        from engine.runtime import configure_process

        configure_process()  # this project's process defaults, as in the driver
        bound_malloc()  # the allocator as the local backend sets it (engine/process_memory.py)
        self.name = stage_cls.name
        self.setup_error: BaseException | None = None
        self.node = node_id()
        self.stage = stage_cls(config, node_run(run))
        try:
            self.stage.setup()
        except Exception as exc:  # noqa: BLE001 - every record reaching this worker then fails with this error
            self.setup_error = exc

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        records = [box.value for box in batch[RECORD]]
        started = time.time()
        if self.setup_error is not None:
            outputs = [r if isinstance(r, Failed) else failure(r, self.name, self.setup_error) for r in records]
        else:
            outputs = apply_stage(self.stage, records)
        ended = time.time()
        release_free_memory()  # the batch's temporaries' pages go back, as after a local worker's batch
        pid, size = os.getpid(), len(records)
        traces = []
        for record, output, ready, trace in zip(records, outputs, batch[READY], batch[TRACE]):
            newly_failed = isinstance(output, Failed) and not isinstance(record, Failed)
            entries = json.loads(trace)
            # stage, worker pid, batch start, batch seconds, batch size, failed here, seconds queued, node
            entries.append([self.name, pid, started, ended - started, size, newly_failed,
                            max(started - float(ready), 0.0), self.node])
            traces.append(json.dumps(entries))
        return {RECORD: carried(outputs), INPUT: np.asarray(batch[INPUT]),
                READY: np.full(size, ended), TRACE: np.asarray(traces, dtype=object)}


def run_task_batch(batch: dict[str, np.ndarray], stage_cls: type[ProcessingStage], config: Any, run: Any
                   ) -> dict[str, np.ndarray]:
    """The function of a task-based stage: the process's set-up worker for the stage (made on first use)."""
    key = (stage_cls, getattr(config, "config_hash", id(config)), getattr(run, "run_id", id(run)))
    worker = _TASK_STAGES.get(key)
    if worker is None:
        worker = _TASK_STAGES[key] = StageWorker(stage_cls, config, run)
    return worker(batch)
