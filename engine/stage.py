"""The stage contract (in the spirit of NeMo Curator's ``ProcessingStage[In, Out]``).

A stage declares the record type it takes and the one it returns, what one worker needs (CPUs, GPUs, memory),
how many records it wants per call, and a ``setup`` that loads its models once per worker. The executor
(``engine.executor``) alone decides where a stage runs and how many workers it gets; the stage only transforms
records. A stage is plain Python: tests build one with a config and call ``process_batch``.

A record that a stage raises on leaves the pipeline as a ``Failed`` record; later stages pass it through
untouched and the pipeline's ``on_failure`` turns it into the final result (a manifest row), so one bad input
never stops a run.
"""
from __future__ import annotations

import errno
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Generic, TypeVar

In = TypeVar("In")
Out = TypeVar("Out")

# The machine's fault, not the record's: a rerun must retry the record instead of trusting a failure.
ENVIRONMENT_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EIO, errno.EROFS})


class UnknownStageError(ValueError):
    """A configuration names a stage the pipeline does not have."""


@dataclass(frozen=True)
class Resources:
    """What ONE worker of a stage needs. The Ray backend reserves it per actor/task; the local backend uses
    ``cpus`` to budget threads."""

    cpus: float = 1.0
    gpus: float = 0.0
    memory_mb: int = 0


class ProcessingStage(Generic[In, Out]):
    """One step of a pipeline. Subclasses set the class attributes and implement ``process`` (one record) or
    ``process_batch`` (records from several clips at once, e.g. a model that batches)."""

    name: ClassVar[str] = ""
    input_type: ClassVar[type] = object
    output_type: ClassVar[type] = object
    resources: ClassVar[Resources] = Resources()
    batch_size: ClassVar[int] = 1

    def __init__(self, config: Any, run: Any = None):
        self.config = config
        self.run = run

    @classmethod
    def resources_for(cls, config: Any) -> Resources:
        """The resources under ``config`` (a GPU stage whose backend is off needs no GPU)."""
        return cls.resources

    @classmethod
    def batch_size_for(cls, config: Any) -> int:
        return cls.batch_size

    @classmethod
    def enabled_for(cls, config: Any) -> bool:
        """False when ``config`` turns the stage off (the executor then leaves it out entirely)."""
        return True

    @classmethod
    def workers_for(cls, config: Any) -> int:
        """How many workers the stage wants by default; the executor's config may override it."""
        return 1

    def setup(self) -> None:
        """Load models once per worker, before the first batch."""

    def process(self, record: In) -> Out:
        raise NotImplementedError(f"{type(self).__name__} implements neither process nor process_batch")

    def process_batch(self, records: list[In]) -> list[Out]:
        return [self.process(record) for record in records]


@dataclass
class Failed:
    """A record a stage raised on. ``transient``: the environment failed (disk full, I/O error, a worker lost),
    so the failure must not be trusted on a rerun."""

    record: Any
    stage: str
    error: str
    reason: str = "clip_error"
    transient: bool = False


@dataclass(frozen=True)
class Pipeline:
    """A named chain of stages and what becomes of records that fail or are lost on the way."""

    name: str
    stages: tuple[type[ProcessingStage], ...]
    on_failure: Callable[[Failed, Any, Any], Any]  # (failed, config, run) -> the final result for that input
    record_id: Callable[[Any], str] = field(default=lambda record: str(record))
    # Stages whose results come with every record (a cache source): never started, so they load no model and
    # reserve no GPU; a config may still name them (executor.workers, ray.workers).
    passed_through: frozenset[str] = frozenset()

    def active(self, config: Any) -> list[type[ProcessingStage]]:
        return [stage for stage in self.stages if stage.name not in self.passed_through and stage.enabled_for(config)]


def describe(exc: BaseException) -> str:
    import traceback

    frames = traceback.extract_tb(exc.__traceback__)
    where = f" (at {frames[-1].name}:{frames[-1].lineno})" if frames else ""
    return f"{type(exc).__name__}: {exc}{where}"


def failure(record: Any, stage: str, exc: BaseException) -> Failed:
    transient = isinstance(exc, OSError) and exc.errno in ENVIRONMENT_ERRNOS
    return Failed(record, stage, describe(exc), "io_error" if transient else "clip_error", transient)


def passes_through(stage: ProcessingStage, record: Any) -> bool:
    """A failed record passes through every later stage untouched."""
    return isinstance(record, Failed)


def apply_stage(stage: ProcessingStage, records: Sequence[Any]) -> list[Any]:
    """Run one batch through ``stage``: failed records pass through; when the batch raises, each
    record is retried alone so only the record at fault fails."""
    live = [r for r in records if not passes_through(stage, r)]
    if not live:
        return list(records)
    try:
        outputs = iter(stage.process_batch(live))
        return [r if passes_through(stage, r) else next(outputs) for r in records]
    except Exception as exc:  # noqa: BLE001 - one bad record must not stop the run
        if len(live) == 1:
            return [r if passes_through(stage, r) else failure(r, stage.name, exc) for r in records]
    results = []
    for record in records:
        if passes_through(stage, record):
            results.append(record)
            continue
        try:
            results.append(stage.process_batch([record])[0])
        except Exception as exc:  # noqa: BLE001
            results.append(failure(record, stage.name, exc))
    return results
