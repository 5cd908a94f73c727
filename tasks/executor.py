"""Running the per-clip stages over many clips: in this process (each stage a Prefect task run), or on Ray.

The stage list comes from the flow; this module only decides where and how many at a time.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

from tqdm import tqdm

from schemas.config import Config
from tasks.records import SourceItem
from tasks.run import RunContext
from tasks.samples import ClipResult, write_samples
from tasks.stage import Clip

Stage = Callable[..., Clip]


def curate_clip(item: SourceItem, stages: Sequence[Stage], config: Config, run: RunContext,
                as_tasks: bool = True) -> ClipResult:
    """One clip through every stage, then encoded, staged and committed to the ledger."""
    clip = Clip(item)
    for stage in stages:
        clip = stage(clip, config) if as_tasks else stage.fn(clip, config)  # type: ignore[attr-defined]
    return write_samples(clip, run) if as_tasks else write_samples.fn(clip, run)


def run_clips(items: list[SourceItem], stages: Sequence[Stage], config: Config, run: RunContext
              ) -> Iterator[ClipResult]:
    """Yield each clip's result as it finishes. Locally one clip at a time (x264 already uses every core);
    with ``config.ray.enabled`` on a Ray cluster, with at most ``config.ray.max_in_flight`` clips in flight."""
    if config.ray.enabled:
        from tasks.ray_executor import run_clips_on_ray

        yield from run_clips_on_ray(items, stages, config, run)
        return
    for item in tqdm(items, desc="clips", unit="clip", disable=None):
        yield curate_clip(item, stages, config, run)
