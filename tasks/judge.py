"""Stage: Qwen3-VL judging of the pre-filtered windows (off in the offline profile; the pre-filter decides).

Judging is on exactly when a VLM is configured (schemas.config.VLMConfig); a run never goes unjudged by accident."""
from __future__ import annotations

import functools
import time

import cv2
import numpy as np

from schemas.config import Config, VLMConfig
from engine.stage import ProcessingStage, Resources
from tasks.clip import Clip, Outcome
from tasks.vlm.factory import make_backend
from tasks.vlm.batcher import SharedJudge
from tasks.vlm.judge import clip_input, record_judgements
from tasks.vlm.prompts import as_catalog
from taxonomy import load_taxonomy

RESOURCES = Resources(cpus=1.0, gpus=1.0)  # production: one model per GPU


@functools.lru_cache(maxsize=2)
def shared_judge(config_json: str) -> SharedJudge:
    """One model per worker process, loaded on first use and kept (keyed by the VLM config); every clip judged
    in this process at the same time shares its batches (tasks.vlm.batcher)."""
    config = VLMConfig.model_validate_json(config_json)
    return SharedJudge(make_backend(config), config, as_catalog(load_taxonomy()))


def audit_thumbnail(frames: np.ndarray, height: int = 120) -> np.ndarray:
    """The middle frame, small: enough for a person auditing the VLM's decisions in the report."""
    middle = frames[len(frames) // 2]
    width = round(middle.shape[1] * height / middle.shape[0])
    return cv2.resize(middle, (width, height), interpolation=cv2.INTER_AREA)


def judge_batch(clips: list[Clip], config: Config) -> list[Clip]:
    """Every window of ``clips`` gets one judgement, in batches filled across the clips; rejected and failed
    ones leave with the VLM's reason."""
    live = [c for c in clips if c.windows]
    if not config.vlm.enabled or not live:
        return clips
    started = time.perf_counter()
    judge = shared_judge(config.vlm.model_dump_json())
    windows = [w for clip in live for w in clip.windows]
    judgements = iter(record_judgements(windows, judge.judge([clip_input(w, config.vlm.num_frames)
                                                              for w in windows]), config.vlm, judge.catalog))
    seconds = (time.perf_counter() - started) / len(live)
    for clip in live:
        kept = []
        for window in clip.windows:
            judgement = next(judgements)
            window.thumbnail = audit_thumbnail(window.frames)
            verdict = judgement.verdict
            if verdict is not None:
                window.scores.update({"vlm_confidence": verdict.confidence,
                                      "vlm_spatial_occupancy": verdict.spatial_occupancy,
                                      "vlm_temporal_occupancy": verdict.temporal_occupancy,
                                      "vlm_scene_cut": float(verdict.scene_cut)})
            if judgement.decision == "accepted":
                kept.append(window)
            else:
                clip.drop(window, Outcome(judgement.decision, judgement.reason or "vlm_rejected",  # type: ignore[arg-type]
                                          error=judgement.raw_excerpt or None, stage="judge-events"))
        clip.windows = kept
        clip.timings["judge-events"] = seconds
    return clips


def judge_events(clip: Clip, config: Config) -> Clip:
    """One clip's windows judged (``JudgeEvents`` judges several clips' windows per batch)."""
    return judge_batch([clip], config)[0]


class JudgeEvents(ProcessingStage[Clip, Clip]):
    """The VLM judge: one model per worker, batches filled with windows of several clips."""

    name, input_type, output_type, resources = "judge-events", Clip, Clip, RESOURCES

    @classmethod
    def enabled_for(cls, config: Config) -> bool:
        return config.vlm.enabled

    @classmethod
    def resources_for(cls, config: Config) -> Resources:
        gpus = config.vlm.num_gpus_per_worker if config.vlm.backend == "transformers" else 0.0
        return Resources(cpus=config.vlm.num_cpus_per_worker, gpus=gpus)

    @classmethod
    def batch_size_for(cls, config: Config) -> int:  # clips per call: enough windows for a full VLM batch
        return max(1, -(-config.vlm.batch_size // config.normalise.windows_per_video))

    @classmethod
    def workers_for(cls, config: Config) -> int:
        return config.vlm.num_workers

    def setup(self) -> None:
        shared_judge(self.config.vlm.model_dump_json())

    def process_batch(self, clips: list[Clip]) -> list[Clip]:
        return judge_batch(clips, self.config)
