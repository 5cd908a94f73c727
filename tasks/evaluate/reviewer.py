"""The Appendix D reviewer: the paper's prompt, four 1-5 scores, trials at temperature 0.7, blind and shuffled.

Every (video, trial) is one request. Requests of all model variants are pooled and shuffled with the protocol seed,
and carry only an opaque id: the reviewer never sees a variant's name or path. Trial t asks with sampling seed
``seed + t`` (one fixed seed for all three would make the trials identical at temperature 0.7). An answer that is
not the four scores (prose, a refusal) or a failed request is kept as that trial's status; it never stops the run.
"""
from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any

import numpy as np

from schemas.config import VLMConfig
from tasks.evaluate.config import ProtocolConfig
from tasks.vlm.backends import VLMCallError, VLMRequest, subsample_frames
from tasks.vlm.openai_backend import OpenAIBackend
from tasks.vlm.prompts import ChatTurn

DIMENSIONS = ("overall_quality", "temporal_consistency", "content_preservation", "artifact_suppression")

REVIEWER_PROMPT = (
    "You are an expert video reviewer evaluating the physical consistency of generated videos after a period of "
    "occlusion or degradation. Observe the initial state of the objects and the background in the first few "
    "frames, and then closely examine the frames after the degradation ends.\n"
    "Please rate the following dimensions on a scale of 1 to 5:\n"
    "1. Overall Quality: Is the recovered video visually coherent and realistic?\n"
    "2. Temporal Consistency: Do the objects resume their motion and trajectory naturally without abrupt jumps?\n"
    "3. Content Preservation: Are the identities, shapes, and textures of the original subjects completely "
    "preserved upon recovery?\n"
    "4. Artifact Suppression: Is the video free from flickering, structural morphing, or lingering textures from "
    "the occluder?")
ANSWER_FORMAT = ("Answer with only a JSON object of four integers from 1 to 5: "
                 '{"overall_quality": _, "temporal_consistency": _, "content_preservation": _, '
                 '"artifact_suppression": _}')


SCORES_SCHEMA = {"type": "object", "additionalProperties": False, "required": list(DIMENSIONS),
                 "properties": {name: {"type": "integer", "minimum": 1, "maximum": 5} for name in DIMENSIONS}}


@dataclass
class Trial:
    request_id: str
    trial: int
    status: str  # ok / unparsed / error
    scores: dict[str, float]
    answer: str


def parse_scores(answer: str) -> dict[str, float] | None:
    """The four scores from a JSON answer (fenced or bare); None unless all four are numbers in 1..5."""
    match = re.search(r"\{.*\}", answer, flags=re.DOTALL)
    if not match:
        return None
    try:
        data = json.loads(match.group(0))
    except json.JSONDecodeError:
        return None
    if not isinstance(data, dict):
        return None
    norm = {re.sub(r"[^a-z]+", "_", str(k).lower()).strip("_"): v for k, v in data.items()}
    scores = {}
    for name in DIMENSIONS:
        value = norm.get(name)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 1 <= value <= 5:
            return None
        scores[name] = float(value)
    return scores


class ReviewerBackend(OpenAIBackend):
    """The project's OpenAI-compatible client with the protocol's temperature and a per-trial sampling seed."""

    def __init__(self, config: VLMConfig, temperature: float) -> None:
        super().__init__(config)
        self.temperature = temperature

    def payload(self, request: VLMRequest, structured: bool | None = None) -> dict[str, Any]:
        body = super().payload(request, structured)
        body["temperature"] = self.temperature
        seed = getattr(request, "seed", None)
        if seed is not None:
            body["seed"] = seed
        return body


@dataclass
class SeededRequest(VLMRequest):
    seed: int | None = None


def opaque_id(variant: str, key: str) -> str:
    return hashlib.sha256(f"{variant}\0{key}".encode()).hexdigest()[:16]


def review(backend: Any, videos: dict[str, np.ndarray], protocol: ProtocolConfig) -> dict[str, list[Trial]]:
    """``videos``: opaque id -> frames (T, H, W, 3). Returns id -> its trials. Shuffled, blind, never raises
    for a bad answer or a failed request."""
    jobs = [(vid, t) for vid in sorted(videos) for t in range(protocol.trials)]
    order = np.random.default_rng(protocol.seed).permutation(len(jobs))
    jobs = [jobs[i] for i in order]
    turns = [ChatTurn("user", f"{REVIEWER_PROMPT}\n\n{ANSWER_FORMAT}")]
    requests = [SeededRequest(frames=subsample_frames(videos[vid], protocol.num_frames), turns=turns,
                              duration_s=len(videos[vid]) / 16, request_id=f"{vid}-{t}", json_schema=SCORES_SCHEMA,
                              seed=protocol.seed + t)
                for vid, t in jobs]
    try:
        answers: list[Any] = backend.generate(requests)
    except Exception as exc:  # the whole batch failed: every trial records it
        answers = [VLMCallError(f"{type(exc).__name__}: {exc}")] * len(requests)
    results: dict[str, list[Trial]] = {vid: [] for vid in videos}
    for (vid, t), answer in zip(jobs, answers):
        if isinstance(answer, Exception):
            results[vid].append(Trial(vid, t, "error", {}, str(answer)[:300]))
            continue
        scores = parse_scores(answer)
        results[vid].append(Trial(vid, t, "ok" if scores else "unparsed", scores or {}, answer[:300]))
    for trials in results.values():
        trials.sort(key=lambda trial: trial.trial)
    return results
