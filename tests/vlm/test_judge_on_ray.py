"""The VLM judge on Ray, as production runs it: the ``JudgeEvents`` stage through the executor's Ray Data backend
(an actor pool; one backend per actor, set up once; batches filled with windows of several clips), with the
OpenAI backend against the scripted server on 127.0.0.1."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from engine.executor import run_pipeline
from engine.stage import Failed, Pipeline
from schemas.config import load_config
from tasks.clip import Clip
from tasks.judge import JudgeEvents
from tests.servers.openai_server import Reply, ScriptedOpenAIServer
from tests.vlm.helpers import first_frame_level, make_windows

MODEL = "served-qwen3-vl"
JUDGE = Pipeline("judge", (JudgeEvents,), on_failure=lambda failed, config, run: failed)


def clips_of(levels: list[list[float]]) -> list[Clip]:
    """One clip per inner list, one window per level (every frame of a window at that brightness)."""
    clips = []
    for c, window_levels in enumerate(levels):
        windows = make_windows(len(window_levels), shape=(17, 48, 80), seed=c)
        for index, (window, level) in enumerate(zip(windows, window_levels)):
            window.index = index
            window.item = windows[0].item
            window.frames[:] = round(level * 255)
        clips.append(Clip(windows[0].item, windows=windows))
    return clips


@pytest.mark.timeout(240)
def test_judge_stage_runs_as_a_ray_actor_pool_with_batches_across_clips(verdict_json: Callable[..., str]) -> None:
    levels = [[0.9, 0.3], [0.75, 0.6], [0.95, 0.2], [0.55, 0.8], [0.7, 0.65], [0.85, 0.1]]

    def reply(body: dict[str, Any]) -> Reply | str:
        level = round(first_frame_level(body), 2)
        return verdict_json(confidence=level) if level >= 0.5 else "no idea"

    with ScriptedOpenAIServer(reply) as server:
        config = load_config(None, {
            "vlm": {"backend": "openai", "model": MODEL, "base_url": server.base_url, "num_frames": 4,
                    "batch_size": 8, "concurrency": 4, "max_retries": 0, "timeout_s": 20.0, "num_workers": 1,
                    "num_cpus_per_worker": 0.5},
            "ray": {"enabled": True, "num_cpus": 2}})
        execution = run_pipeline(clips_of(levels), JUDGE, config, None)
        results = list(execution)

    assert not [r for r in results if isinstance(r, Failed)]
    assert sorted(c.item.clip_id for c in results) == sorted(f"test-{c}-0" for c in range(len(levels)))
    for clip in results:
        kept = {w.index for w in clip.windows}
        dropped = {o.window: o.reason for o in clip.outcomes}
        assert kept | set(dropped) == {0, 1} and not kept & set(dropped)
        for window in clip.windows:
            assert window.vlm["decision"] == "accepted" and window.scores["vlm_confidence"] >= 0.5
        assert set(dropped.values()) <= {"vlm_unparseable"}
    accepted = sum(len(c.windows) for c in results)
    assert accepted == sum(level >= 0.5 for clip in levels for level in clip)
    unparseable = 12 - accepted  # asked once more (the parse retry), then rejected
    assert len(server.requests) == 12 + unparseable  # each window judged once: no clip went through twice
    stage = execution.metrics.summary()["stages"]["judge-events"]
    assert execution.metrics.backend == "ray" and stage["workers"] == 1 and stage["items"] == len(levels)
    assert stage["mean_batch"] > 1  # 8 windows per VLM batch = 4 clips per call: batches span clips
