"""The Ray Data backend of the executor: one ``map_batches`` per stage, streamed, nothing lost.

The inputs become rows holding the Python record (``{"record": obj}``); each active stage of the pipeline is one
``map_batches`` over them, run by Ray Data's streaming executor (operators joined by bounded queues; a stage whose
downstream is full is backpressured, and the object store budget caps the bytes in flight):

- a stage that reserves GPUs (``resources_for(config).gpus > 0``) or loads models in ``setup()`` runs as an actor
  pool: each actor constructs the stage and calls ``setup()`` once, and takes batches of ``batch_size_for(config)``
  records filled across clips; the pool has ``ray.workers[stage]`` or ``workers_for(config)`` actors, each
  reserving the stage's declared CPUs and GPUs (so a GPU is held only by the stage that uses it, never by decode
  or encode);
- every other stage runs as Ray tasks reserving its declared CPUs, as many at once as the cluster's CPUs allow
  (or ``ray.workers[stage]``); consecutive CPU stages with the same resources are fused by Ray Data into one task,
  so records do not cross the object store between them.

The last stage (write) commits each clip's ledger entry on the worker; the driver yields every result as it streams
out, and the executor turns ``Failed`` records into results through the pipeline.

Failures:
- a worker process that dies mid-batch (OOM kill, SIGKILL, node loss) is retried by Ray (tasks: ``max_retries``;
  actors: restarted with ``max_restarts`` and their batches sent again, ``actor_task_retry_on_errors``); outputs are idempotent (staged by key,
  renamed into place, ledger written last), so the retry overwrites what the dead attempt left;
- a record whose stage raises leaves as ``Failed`` (``clip_error``; ``io_error`` and transient for a full or
  failing disk) and passes through the remaining stages: the run goes on;
- when the execution itself dies (a worker killed more often than the retries allow; Ray Data also gives up on an
  actor whose node went away), a fresh execution takes the inputs not yet out (``MAX_EXECUTIONS`` in all, and only
  while the cluster can still hold the actor pools); after the last, every input not yet yielded is yielded as a
  transient ``Failed`` (``worker_lost`` or ``io_error``): it is in the manifest as failed and the next run retries
  it. No input is ever dropped.

Per-stage metrics are measured in the workers (time inside ``process_batch``, queue waits) and travel with each
record to the driver (``engine.ray_worker``, ``engine.ray_trace``), which sums them. Unlike the local backend's
threads, records (a clip's decoded frames) cross the object store between stages that are not fused: on one small
machine this backend costs more than the local one; it is for clusters. OUT is a folder every node mounts, or object
storage: each worker then writes its own node's working folder and commits to the bucket (``engine.ray_worker.
node_run``), and the driver packs from the bucket; nothing crosses nodes through a disk. The nodes need no checkout: the job ships our packages as runtime_env py_modules (engine.runtime), and with
``ray.runtime_env_pip`` also the pinned dependencies.
"""
from __future__ import annotations

import dataclasses
import functools
import logging
import os
import time
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from tqdm import tqdm

from engine.metrics import PipelineMetrics
from engine.ray_trace import TraceTotals
from engine.ray_worker import INPUT, READY, RECORD, TRACE, Carried, StageWorker, run_task_batch
from engine.stage import ENVIRONMENT_ERRNOS, Failed, Pipeline, ProcessingStage, Resources, UnknownStageError
from engine.runtime import ray_session, worker_env_vars

log = logging.getLogger(__name__)
MAX_RETRIES = 3  # worker deaths tolerated per task / actor before the execution gives up (then: worker_lost)
# Ray Data can end a whole execution when an actor's node is lost (ActorUnavailableError), retries or not: a fresh
# execution then takes the inputs not yet out, up to this many executions in all, before they are yielded as lost.
MAX_EXECUTIONS = 3
# A local Ray's object store: records (decoded frames included) cross it between stages that are not fused.
# Ray Data's streaming executor keeps what is in flight within this budget (spilling to the temp dir past it).
LOCAL_OBJECT_STORE_BYTES = 1 << 30


class RayResourcesError(RuntimeError):
    """The cluster cannot hold the pipeline's actor pools (the run would wait forever): a misconfiguration."""


@dataclass(frozen=True)
class StagePlan:
    stage: type[ProcessingStage]
    actors: bool  # an actor pool (GPU or model-loading setup); else Ray tasks
    workers: int  # actors in the pool, or tasks at once
    resources: Resources
    batch_size: int


def _loads_models(stage: type[ProcessingStage]) -> bool:
    return stage.setup is not ProcessingStage.setup


def plan_stages(pipeline: Pipeline, config: Any, cluster_cpus: float) -> list[StagePlan]:
    """Where and how many, per active stage (``ray.workers`` names stages; an unknown name is an error)."""
    requested = dict(getattr(config.ray, "workers", {}) or {})
    unknown = sorted(set(requested) - {stage.name for stage in pipeline.stages})
    if unknown:
        raise UnknownStageError(f"ray.workers names no stage of {pipeline.name}: {', '.join(unknown)} "
                                f"(its stages: {', '.join(stage.name for stage in pipeline.stages)})")
    plans = []
    for stage in pipeline.active(config):
        resources = stage.resources_for(config)
        actors = resources.gpus > 0 or _loads_models(stage)
        default = stage.workers_for(config) if actors else max(1, int(cluster_cpus // max(resources.cpus, 1e-3)))
        plans.append(StagePlan(stage, actors, max(1, int(requested.get(stage.name, default))), resources,
                               max(1, int(stage.batch_size_for(config)))))
    return plans


def needed_cpus(plans: list[StagePlan]) -> float:
    """CPUs the actor pools hold for their whole life, plus room for the largest task (else tasks never run)."""
    held = sum(p.workers * p.resources.cpus for p in plans if p.actors)
    return held + max((p.resources.cpus for p in plans if not p.actors), default=0.0)


def needed_gpus(plans: list[StagePlan]) -> float:
    return sum(p.workers * p.resources.gpus for p in plans if p.actors)


def _check_cluster(plans: list[StagePlan]) -> None:
    import ray

    have = ray.cluster_resources()
    cpus, gpus = have.get("CPU", 0.0), have.get("GPU", 0.0)
    pools = ", ".join(f"{p.stage.name}: {p.workers} x ({p.resources.cpus:g} CPU, {p.resources.gpus:g} GPU)"
                      for p in plans if p.actors) or "none"
    if needed_gpus(plans) > gpus + 1e-9 or needed_cpus(plans) > cpus + 1e-9:
        raise RayResourcesError(f"this Ray cluster has {cpus:g} CPUs and {gpus:g} GPUs; the pipeline's actor "
                                f"pools ({pools}) and its largest task need {needed_cpus(plans):g} CPUs and "
                                f"{needed_gpus(plans):g} GPUs. Lower ray.workers or the stages' resources.")


def _dataset(records: dict[int, Any], plans: list[StagePlan], config: Any, run: Any, env_vars: dict[str, str],
             started: float):
    import ray
    from ray.data import ActorPoolStrategy, DataContext, TaskPoolStrategy

    context = DataContext.get_current()
    context.enable_progress_bars = False  # the driver shows one bar over clips
    context.print_on_execution_start = False
    context.enable_fallback_to_arrow_object_ext_type = True  # records travel pickled (engine.ray_worker.Carried)
    # A batch whose actor's node went away (ActorUnavailableError: "may or may not have been executed") is sent
    # again to the restarted actor: outputs are idempotent, and Ray Data retries no actor task by default.
    context.actor_task_retry_on_errors = [ray.exceptions.RayActorError]
    rows = [{RECORD: Carried(record), INPUT: index, READY: started, TRACE: "[]"} for index, record in records.items()]
    # One block per batch of the first stage (per input for ingest's decode): work streams out at once, and
    # Ray Data does not track one object per record where the first stage takes many.
    first_batch = plans[0].batch_size if plans else 1
    dataset = ray.data.from_items(rows, override_num_blocks=max(1, -(-len(rows) // first_batch)))
    worker_run = dataclasses.replace(run, _lock=None) if dataclasses.is_dataclass(run) else run  # lock: driver's
    with warnings.catch_warnings():  # max_retries / max_restarts have no named parameter yet: ray_remote_args
        warnings.filterwarnings("ignore", message="`ray_remote_args` is deprecated", category=DeprecationWarning)
        for plan in plans:
            common = dict(batch_size=plan.batch_size, batch_format="numpy", num_cpus=plan.resources.cpus,
                          runtime_env={"env_vars": env_vars})
            if plan.resources.gpus:
                common["num_gpus"] = plan.resources.gpus
            if plan.resources.memory_mb:
                common["memory"] = plan.resources.memory_mb * (1 << 20)
            if plan.actors:
                # ray.max_in_flight batches queued per actor: the next batch is fetched while one runs (a GPU never
                # waits on the object store between batches).
                dataset = dataset.map_batches(
                    StageWorker, fn_constructor_args=(plan.stage, config, worker_run),
                    compute=ActorPoolStrategy(size=plan.workers,
                                              max_tasks_in_flight_per_actor=config.ray.max_in_flight),
                    max_restarts=MAX_RETRIES, max_task_retries=MAX_RETRIES, **common)
            else:
                dataset = dataset.map_batches(
                    functools.partial(run_task_batch, stage_cls=plan.stage, config=config, run=worker_run),
                    compute=TaskPoolStrategy(size=plan.workers), max_retries=MAX_RETRIES, **common)
    return dataset


def _lost_reason(exc: BaseException) -> str:
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, OSError) and exc.errno in ENVIRONMENT_ERRNOS:
            return "io_error"
        exc = getattr(exc, "cause", None) or exc.__cause__ or exc.__context__  # type: ignore[assignment]
    return "worker_lost"


def _lost_error(exc: BaseException) -> str:
    message = (str(exc).strip().splitlines() or [""])[-1][:500]
    return f"{type(exc).__name__}: the Ray execution ended before this input finished ({message})"


def run_on_ray(records: Iterable[Any], pipeline: Pipeline, config: Any, run: Any, metrics: PipelineMetrics
               ) -> Iterator[Any]:
    """Yield each input's final record (or ``Failed``) as it streams out of Ray Data; every input exactly once."""
    records = list(records)
    if not records:
        metrics.finish()
        return
    import ray

    cpus = float(ray.cluster_resources().get("CPU", 1.0)) if ray.is_initialized() else \
        float(config.ray.num_cpus or os.cpu_count() or 1)
    plans = plan_stages(pipeline, config, cpus)
    totals = TraceTotals(metrics, [p.stage.name for p in plans])
    for plan in plans:
        m = metrics.stage(plan.stage.name)
        m.workers, m.cpus, m.gpus, m.batch_size = plan.workers, plan.resources.cpus, plan.resources.gpus, \
            plan.batch_size
    env_vars = worker_env_vars()
    # A local Ray gets ray.num_cpus (0: every core) logical CPUs, raised to what the actor pools hold plus the largest
    # task: an idle actor keeps its CPU reserved, so on a 2-core machine the OS shares the cores between actors and
    # tasks (as the local backend's threads share them) instead of the run waiting forever.
    with ray_session(config.ray.address, num_cpus=max(cpus, needed_cpus(plans)), env_vars=env_vars,
                     min_free_disk_gib=config.ray.min_free_disk_gib, pip=config.ray.runtime_env_pip,
                     object_store_bytes=LOCAL_OBJECT_STORE_BYTES):
        yield from _stream(records, plans, config, run, env_vars, totals)


def _rows_until_lost(dataset: Any) -> Iterator[Any]:
    """The execution's rows, then the exception that ended it, if one did (the execution died)."""
    from ray.exceptions import RayError

    rows = iter(dataset.iter_rows())
    while True:
        try:
            yield next(rows)
        except StopIteration:
            return
        except (RayError, OSError) as exc:
            yield exc
            return


def _cluster_holds(plans: list[StagePlan]) -> bool:
    try:
        _check_cluster(plans)
    except RayResourcesError as exc:  # a lost node not replaced: what is left is yielded as lost, no waiting
        log.warning("%s", exc)
        return False
    return True


def _stream(records: list[Any], plans: list[StagePlan], config: Any, run: Any, env_vars: dict[str, str],
            totals: TraceTotals) -> Iterator[Any]:
    yielded: set[int] = set()
    bar = tqdm(total=len(records), desc="clips (ray)", unit="clip", disable=None)
    try:
        _check_cluster(plans)
        totals.start(time.time())
        lost: BaseException | None = None
        for execution in range(1, MAX_EXECUTIONS + 1):
            left = {index: record for index, record in enumerate(records) if index not in yielded}
            if not left:
                break
            if lost is not None:
                if not _cluster_holds(plans):
                    break
                log.warning("the Ray execution ended (%s); execution %d of %d takes the %d inputs left",
                            _lost_error(lost), execution, MAX_EXECUTIONS, len(left))
            dataset = _dataset(left, plans, config, run, env_vars, time.time())
            lost = None
            for row in _rows_until_lost(dataset):
                if isinstance(row, BaseException):
                    lost = row
                    break
                index = int(row[INPUT])
                if index in yielded:  # a retried block re-emitted a record already out: never yield it twice
                    continue
                yielded.add(index)
                totals.add(row[TRACE], float(row[READY]))
                bar.update(1)
                yield row[RECORD].value
            if lost is None or _lost_reason(lost) != "worker_lost":
                break
        if lost is not None:
            reason, error = _lost_reason(lost), _lost_error(lost)
            for index, record in enumerate(records):
                if index not in yielded:
                    yielded.add(index)
                    bar.update(1)
                    yield Failed(record, "executor", error, reason, transient=True)
    finally:
        bar.close()
        totals.finish()

