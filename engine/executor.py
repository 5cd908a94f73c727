"""The one executor over the stage contract: the local streaming backend, or Ray Data on a cluster.

The flow hands it a ``Pipeline`` and the records; this module alone decides where each stage runs and how many
workers it gets (``config.executor`` locally, ``config.ray`` on Ray). It yields one final result per input, in
completion order, with failed records already turned into results by the pipeline's ``on_failure``.
"""
from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from engine.metrics import PipelineMetrics
from engine.stage import Failed, Pipeline, UnknownStageError


def local_workers(pipeline: Pipeline, config: Any) -> list[int]:
    stages = pipeline.active(config)
    names = {stage.name for stage in pipeline.stages}
    unknown = sorted(set(config.executor.workers) - names)
    if unknown:
        raise UnknownStageError(f"executor.workers names no stage of {pipeline.name}: {', '.join(unknown)} "
                                f"(its stages: {', '.join(stage.name for stage in pipeline.stages)})")
    return [max(1, int(config.executor.workers.get(stage.name, stage.workers_for(config)))) for stage in stages]


class Execution:
    """Iterate it for the results; ``metrics`` fills in as it runs."""

    def __init__(self, records: Iterable[Any], pipeline: Pipeline, config: Any, run: Any):
        self.pipeline, self.config, self.run = pipeline, config, run
        self._store = getattr(run, "store", None)  # engine.store.OutputStore (None: a bare pipeline, no OUT)
        self.metrics = PipelineMetrics("ray" if config.ray.enabled else "local")
        if config.ray.enabled:
            from engine.ray_data import run_on_ray

            self._results = run_on_ray(records, pipeline, config, run, self.metrics)
        else:
            from engine.local import LocalPipeline

            self._results = LocalPipeline(pipeline.active(config), local_workers(pipeline, config), config, run,
                                          config.executor.max_in_flight, self.metrics,
                                          config.executor.batch_wait_s).stream(records)

    def __iter__(self) -> Iterator[Any]:
        try:
            for item in self._results:
                yield self.pipeline.on_failure(item, self.config, self.run) if isinstance(item, Failed) else item
                if self._store is not None:
                    self._store.checkpoint()  # e.g. fold the bucket's ledger now and then: a resume lists it fast
        finally:
            close = getattr(self._results, "close", None)
            if close is not None:  # stops the backend's workers when the caller stops early
                close()


def run_pipeline(records: Iterable[Any], pipeline: Pipeline, config: Any, run: Any) -> Execution:
    return Execution(records, pipeline, config, run)
