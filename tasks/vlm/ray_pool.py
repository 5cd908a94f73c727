"""The VLM stage on Ray: a pool of actors that each load the backend once and judge batches of clips.

Windows are subsampled to ``config.num_frames`` on the driver before they are sent, so only those frames cross the
object store; judgements come back in window order and are applied to the driver's windows.
"""
from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from typing import Any

import ray
from ray.util import ActorPool

from schemas.config import VLMConfig
from schemas.vlm import VLMJudgement
from tasks.records import Window
from tasks.vlm.backends import Usage, make_backend
from tasks.vlm.judge import ClipInput, clip_input, judge_clips, record_judgements
from tasks.vlm.prompts import EventCatalog, TaxonomyLike, as_catalog, get_prompt

log = logging.getLogger(__name__)


def ensure_ray(address: str | None = None, num_cpus: int | None = None) -> None:
    """Connect to ``address``, or start a small local Ray (no dashboard, no usage stats) if none is running."""
    if ray.is_initialized():
        return
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    if address:
        ray.init(address=address, include_dashboard=False, log_to_driver=False)
    else:
        ray.init(num_cpus=num_cpus or 2, include_dashboard=False, log_to_driver=False)


class VLMActor:
    """One worker: loads the backend (weights, HTTP pool) once in ``__init__``, then judges clip batches."""

    def __init__(self, config: dict[str, Any], catalog: EventCatalog) -> None:
        self.config = VLMConfig.model_validate(config)
        self.catalog = catalog
        self.backend = make_backend(self.config)

    def judge(self, clips: list[ClipInput]) -> list[VLMJudgement]:
        return judge_clips(clips, self.backend, self.config, self.catalog)

    def usage(self) -> Usage:
        return self.backend.usage


class VLMPool:
    """``config.num_workers`` VLM actors with ``config.num_gpus_per_worker`` GPUs each. Use as a context manager."""

    def __init__(self, config: VLMConfig, taxonomy: TaxonomyLike | EventCatalog) -> None:
        get_prompt(config.prompt_version)  # fail on the driver, not in every actor
        self.config = config
        self.catalog = as_catalog(taxonomy)
        remote = ray.remote(VLMActor).options(num_gpus=config.num_gpus_per_worker,
                                              num_cpus=config.num_cpus_per_worker, max_restarts=0)
        self.actors = [remote.remote(config.model_dump(mode="json"), self.catalog) for _ in range(config.num_workers)]
        self._pool = ActorPool(self.actors)

    def __enter__(self) -> "VLMPool":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        for actor in self.actors:
            ray.kill(actor)
        self.actors = []

    def usage(self) -> list[Usage]:
        return ray.get([a.usage.remote() for a in self.actors])

    def _failed(self, count: int, error: BaseException) -> list[VLMJudgement]:
        # Ray wraps the actor's traceback; its last line is the original exception.
        lines = [line.strip() for line in str(error).splitlines() if line.strip()]
        cause = lines[-1] if lines else type(error).__name__
        reason = f"vlm_error: {self.config.backend} VLM {self.config.model!r} on Ray: {type(error).__name__}: {cause}"
        return [VLMJudgement(backend=self.config.backend, model=self.config.model,
                             prompt_version=self.config.prompt_version, decision="failed",
                             reason=reason[:500]) for _ in range(count)]

    def judge_clips(self, clips: list[ClipInput]) -> list[VLMJudgement]:
        """Judgements in clip order; at most two batches per actor in flight, so memory stays bounded."""
        size = self.config.batch_size
        chunks = [clips[i:i + size] for i in range(0, len(clips), size)]
        queue: Iterator[list[ClipInput]] = iter(chunks)

        def submit_next() -> None:
            chunk = next(queue, None)
            if chunk is not None:
                self._pool.submit(lambda actor, batch: actor.judge.remote(batch), chunk)

        for _ in range(2 * len(self.actors)):
            submit_next()
        out: list[VLMJudgement] = []
        for chunk in chunks:
            try:
                out.extend(self._pool.get_next())
            except Exception as exc:  # noqa: BLE001 - a dead actor fails its windows, not the run
                log.error("VLM actor failed on %d clips: %s", len(chunk), exc)
                out.extend(self._failed(len(chunk), exc))
            submit_next()
        return out

    def judge(self, windows: list[Window]) -> list[VLMJudgement]:
        """Judge windows (subsampled here, before sending) and record the judgements on them."""
        judgements = self.judge_clips([clip_input(w, self.config.num_frames) for w in windows])
        return record_judgements(windows, judgements, self.config, self.catalog)


def judge_windows_on_ray(windows: list[Window], config: VLMConfig,
                         taxonomy: TaxonomyLike | EventCatalog) -> list[VLMJudgement]:
    """``judge_windows`` on a Ray actor pool (started here and torn down after); Ray is initialised if needed."""
    if not windows:
        return []
    ensure_ray()
    with VLMPool(config, taxonomy) as pool:
        return pool.judge(windows)
