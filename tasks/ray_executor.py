"""The per-clip stages on Ray: one coarse Ray task per clip, a bounded number in flight, nothing lost.

Each clip is ONE Ray task that runs every stage's plain function (``stage.fn``) and commits the clip's ledger
entry, exactly as the local path does (``tasks.executor.curate_clip(..., as_tasks=False)``): no Prefect task
runs inside the workers (they would cost ~0.35 s each and need the API). The driver keeps at most
``config.ray.max_in_flight`` clips in flight, so memory stays flat however many clips there are.

Failures:
- a worker process that dies mid-clip (OOM kill, SIGKILL, node loss) is retried by Ray (``max_retries``); a
  clip's outputs are idempotent (staged by window id / key, renamed into place, ledger written last), so a
  retried clip overwrites the partial work of the attempt that died;
- a clip whose code raises becomes ``failed`` rows (reason ``clip_error``) committed to the ledger, like any
  stage failure: the run goes on;
- a clip that still has no result after the retries (``worker_lost``), or that hit a full or failing disk
  (``io_error``), is recorded with a ledger entry that the next run does not trust (so a rerun tries it again)
  and the run goes on.

OUT must be on storage every Ray node can write (a shared filesystem for a multi-node cluster). The nodes need no
checkout: the job ships our packages as runtime_env py_modules (remind_curate.ray_env), and with
``ray.runtime_env_pip`` also the pinned dependencies.
"""
from __future__ import annotations

import dataclasses
import errno
import os
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from typing import Any

from tqdm import tqdm

from schemas.config import Config
from schemas.manifest import ManifestRow
from tasks.records import SourceItem
from tasks.run import RunContext, atomic_write_json
from tasks.samples import ClipResult, commit_clip, manifest_row
from tasks.stage import Clip, Outcome, describe_error

MAX_RETRIES = 3  # worker deaths tolerated per clip before it is recorded as worker_lost
LOCAL_OBJECT_STORE_BYTES = 256 << 20  # results are small (rows); frames never leave their worker
# The machine's fault, not the clip's: never committed as the clip's outcome, so a rerun retries the clip.
ENVIRONMENT_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EIO, errno.EROFS})


def _failed_result(item: SourceItem, run: RunContext, reason: str, error: str) -> tuple[Clip, list[ManifestRow]]:
    clip = Clip(item)
    outcome = Outcome("failed", reason, error=error, stage="ray")
    return clip, [manifest_row(run, None, clip, "failed", reason, error, outcome=outcome)]


def curate_on_worker(item: SourceItem, stages: Sequence[Any], config: Config, run: RunContext) -> ClipResult:
    """The body of one Ray task: every stage's plain function, then encode, stage and commit."""
    from remind_curate import env

    env.configure()
    from tasks.executor import curate_clip

    try:
        return curate_clip(item, stages, config, run, as_tasks=False)
    except Exception as exc:  # noqa: BLE001 - one clip's bug must not stop the run
        if isinstance(exc, OSError) and exc.errno in ENVIRONMENT_ERRNOS:
            raise  # not the clip's fault: the driver records it as transient (io_error), a rerun retries it
        clip, rows = _failed_result(item, run, "clip_error", describe_error(exc))
        commit_clip(clip, rows, run)
        return ClipResult(item.clip_id, rows, {})


def record_lost(item: SourceItem, run: RunContext, error: str, reason: str = "worker_lost") -> ClipResult:
    """The clip never finished on any worker: it is in the manifest as failed, and a rerun redoes it (the ledger
    entry carries a clip hash no run has, so resume never trusts it)."""
    clip, rows = _failed_result(item, run, reason, error)
    try:
        atomic_write_json(run.clips / f"{item.clip_id}.json", {
            "clip_id": item.clip_id, "clip_hash": "", "transient": True,
            "rows": [r.model_dump(mode="json") for r in rows], "timings": {}, "checksums": {}})
    except OSError:  # e.g. the disk is full: the manifest then says not_processed, and a rerun redoes it
        pass
    return ClipResult(item.clip_id, rows, {})


def _lost_reason(exc: BaseException) -> str:
    cause = getattr(exc, "cause", None)
    if isinstance(cause, OSError) and cause.errno in ENVIRONMENT_ERRNOS:
        return "io_error"
    return "worker_lost"


def worker_env() -> dict[str, str]:
    """What every Ray worker needs in its environment: the Prefect API of this run (else each worker would start
    its own temporary server on first Prefect use) and this project's Prefect/Ray process defaults."""
    from prefect.settings import get_current_settings

    from remind_curate import env

    values = {key: os.environ.get(key, default) for key, default in env.DEFAULTS.items()}
    url = get_current_settings().api.url
    if url:
        values["PREFECT_API_URL"] = str(url)
    return values


def task_resources(config: Config) -> dict[str, float]:
    """One CPU per clip; GPUs only when a GPU stage is on (their declared RESOURCES, sized by the config)."""
    from tasks.cameras import RESOURCES as CAMERA_RESOURCES
    from tasks.judge import RESOURCES as JUDGE_RESOURCES

    gpus = 0.0
    if config.vlm.enabled and JUDGE_RESOURCES.gpus:
        gpus = max(gpus, config.vlm.num_gpus_per_worker)
    if config.geometry.backend == "da3" and CAMERA_RESOURCES.gpus:
        gpus = max(gpus, config.geometry.num_gpus_per_worker)
    return {"num_cpus": 1, "num_gpus": gpus}


def _start_ray(config: Config, env_vars: dict[str, str]) -> str | None:
    """Connect to (or start) Ray. Returns the temp dir of a local Ray this call started (None otherwise)."""
    import ray

    from remind_curate.ray_env import job_runtime_env

    runtime_env = job_runtime_env(env_vars, pip=config.ray.runtime_env_pip)  # nodes need no checkout
    address = config.ray.address or "local"
    if address == "local":  # never attach to someone else's Ray on this machine
        temp_dir = tempfile.mkdtemp(prefix="rc-ray-", dir="/tmp")  # short: Ray's socket paths are length-capped
        ray.init(address="local", num_cpus=config.ray.num_cpus or None, include_dashboard=False,
                 object_store_memory=LOCAL_OBJECT_STORE_BYTES, runtime_env=runtime_env,
                 _temp_dir=temp_dir, log_to_driver=True)
        return temp_dir
    ray.init(address=address, runtime_env=runtime_env)
    return None


def run_clips_on_ray(items: list[SourceItem], stages: Sequence[Any], config: Config, run: RunContext
                     ) -> Iterator[ClipResult]:
    """Yield each clip's result as it finishes, with at most ``config.ray.max_in_flight`` clips in flight."""
    if not items:
        return
    import ray
    from ray.exceptions import RayError

    env_vars = worker_env()
    started_here = not ray.is_initialized()
    temp_dir = _start_ray(config, env_vars) if started_here else None
    remote = ray.remote(curate_on_worker).options(
        max_retries=MAX_RETRIES, retry_exceptions=False, runtime_env={"env_vars": env_vars},
        **task_resources(config))
    # Shared arguments go to the object store once, not once per clip. The lock file stays with the driver.
    worker_run = dataclasses.replace(run, _lock=None)
    stages_ref, config_ref, run_ref = ray.put(tuple(stages)), ray.put(config), ray.put(worker_run)
    pending: dict[Any, SourceItem] = {}
    todo = iter(items)
    bar = tqdm(total=len(items), desc="clips (ray)", unit="clip", disable=None)
    try:
        while True:
            while len(pending) < config.ray.max_in_flight:
                item = next(todo, None)
                if item is None:
                    break
                pending[remote.remote(item, stages_ref, config_ref, run_ref)] = item
            if not pending:
                break
            ready, _ = ray.wait(list(pending), num_returns=1)
            item = pending.pop(ready[0])
            try:
                result = ray.get(ready[0])
            except RayError as exc:  # the worker died more than MAX_RETRIES times, Ray lost the task, disk full
                cause = getattr(exc, "cause", None) or exc
                message = (str(cause).strip().splitlines() or [""])[-1][:500]
                result = record_lost(item, run, f"{type(cause).__name__}: {message}", _lost_reason(exc))
            bar.update(1)
            yield result
    finally:
        bar.close()
        for ref in pending:  # an interrupted driver leaves no clip running (the ledger is the truth on rerun)
            try:
                ray.cancel(ref, force=True)
            except Exception:  # noqa: BLE001
                pass
        if started_here:
            ray.shutdown()
            if temp_dir:
                shutil.rmtree(temp_dir, ignore_errors=True)
