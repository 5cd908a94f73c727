"""Stage: Qwen3-VL judging of the pre-filtered windows (off in the offline profile; the pre-filter decides).

Judging is on exactly when a VLM is configured (schemas.config.VLMConfig); a run never goes unjudged by accident."""
from __future__ import annotations

import functools
import time

import cv2
import numpy as np

from schemas.config import Config, VLMConfig
from tasks.stage import Clip, Outcome, Resources, stage_task
from tasks.vlm.backends import make_backend
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


@stage_task("judge-events")
def judge_events(clip: Clip, config: Config) -> Clip:
    """Every window gets one judgement; rejected and failed ones leave with the VLM's reason."""
    if not config.vlm.enabled or not clip.windows:
        return clip
    started = time.perf_counter()
    judge = shared_judge(config.vlm.model_dump_json())
    inputs = [clip_input(w, config.vlm.num_frames) for w in clip.windows]
    judgements = record_judgements(clip.windows, judge.judge(inputs), config.vlm, judge.catalog)
    kept = []
    for window, judgement in zip(clip.windows, judgements):
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
    clip.timings["judge-events"] = time.perf_counter() - started
    return clip
