"""Query vs VLM event type, multi-label tags, batches filled across clips, and a config that cannot go unjudged."""
from __future__ import annotations

import json
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from schemas.config import VLMConfig, load_config
from tasks.records import Window
from tasks.vlm.batcher import SharedJudge
from tasks.vlm.judge import clip_input, judge_windows
from tasks.vlm.openai_backend import OpenAIBackend
from tasks.vlm.prompts import EventCatalog
from tests.servers.openai_server import Reply, ScriptedOpenAIServer

QUERY = "container_filling"  # monotonic_state
OTHER = "ball_rolling"  # translational
SAME_GROUP = "coffee_pouring"  # monotonic_state, like QUERY
INTERACTION = "stirring_pot"  # interaction


def _judge_one(verdict: dict[str, Any], catalog: EventCatalog, window: Window, **cfg: Any) -> Any:
    answer = json.dumps({"scene_cut": False, "spatial_occupancy": 0.5, "temporal_occupancy": 0.9,
                         "caption": "The water level in a glass rises as it fills.", **verdict})
    with ScriptedOpenAIServer(default=Reply(answer)) as server:
        config = VLMConfig.model_validate({"backend": "openai", "model": "m", "base_url": server.base_url,
                                           "num_frames": 2, "max_retries": 0, **cfg})
        backend = OpenAIBackend(config)
        [judgement] = judge_windows([window], backend, config, catalog)
        backend.close()
    return judgement


@pytest.mark.parametrize("vlm_type, confidence, primary, agree, primary_from", [
    (OTHER, 0.9, OTHER, False, "vlm"),  # confident: the VLM's type wins
    (OTHER, 0.6, QUERY, False, "query"),  # accepted (>= min_confidence) but not confident: the query's type stays
    (QUERY, 0.9, QUERY, True, "vlm"),
])
def test_query_and_vlm_types_are_both_recorded_and_the_vlm_wins_only_when_confident(
        catalog: EventCatalog, windows: Callable[..., list[Window]], vlm_type: str, confidence: float, primary: str,
        agree: bool, primary_from: str) -> None:
    [window] = windows(1)
    window.tags = [QUERY]
    judgement = _judge_one({"event_type": vlm_type, "confidence": confidence}, catalog, window,
                           min_confidence=0.5, type_confidence=0.8)
    assert judgement.decision == "accepted"
    types = judgement.event_types
    assert (types.query, types.vlm, types.agree, types.primary, types.primary_from) == (
        QUERY, vlm_type, agree, primary, primary_from)
    assert window.tags[0] == primary and window.vlm["event_types"]["agree"] is agree


def test_tags_are_multi_label_across_groups(catalog: EventCatalog, windows: Callable[..., list[Window]]) -> None:
    [window] = windows(1)
    judgement = _judge_one({"event_type": QUERY, "confidence": 0.9,
                            "also_event_types": [INTERACTION, SAME_GROUP, "not_a_type"]}, catalog, window)
    assert judgement.verdict.also_event_types == [INTERACTION, SAME_GROUP]  # unknown ids dropped
    assert window.tags == [QUERY, INTERACTION]  # one tag per group: the same-group id adds nothing
    assert judgement.event_types.query is None and judgement.event_types.primary_from == "vlm"


def _clips(windows: Callable[..., list[Window]], count: int, per_clip: int) -> list[list[Any]]:
    return [[clip_input(w, 2) for w in windows(per_clip, seed=seed)] for seed in range(count)]


def test_windows_of_concurrent_clips_share_batches(small_catalog: EventCatalog, verdict_json: Callable[..., str],
                                                   windows: Callable[..., list[Window]]) -> None:
    """Three clips of two windows judged at once, batch_size 4: two batches (4 + 2), not three of one clip each."""
    with ScriptedOpenAIServer(default=Reply(verdict_json(event_type=small_catalog.ids()[0]))) as server:
        config = VLMConfig(backend="openai", model="m", base_url=server.base_url, num_frames=2, batch_size=4,
                           concurrency=4, batch_wait_s=1.0, max_retries=0)
        backend = OpenAIBackend(config)
        calls: list[int] = []
        generate = backend.generate

        def counted(requests: list[Any]) -> list[Any]:  # a spy: what each backend call really carries
            calls.append(len(requests))
            return generate(requests)

        backend.generate = counted  # type: ignore[method-assign]
        judge = SharedJudge(backend, config, small_catalog)
        clips = _clips(windows, 3, 2)
        results: dict[int, list[Any]] = {}
        threads = [threading.Thread(target=lambda i=i: results.__setitem__(i, judge.judge(clips[i])))
                   for i in range(3)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assert sorted(judge.batch_sizes) == [2, 4] and sorted(calls) == [2, 4] and len(server.requests) == 6
        for i in range(3):  # every clip gets its own judgements back, in order
            assert [j.decision for j in results[i]] == ["accepted", "accepted"]

        sequential = SharedJudge(backend, config, small_catalog)  # a lone caller never waits for others
        for clip in clips:  # the local executor: one clip at a time, so a batch holds one clip's windows
            sequential.judge(clip)
        backend.close()
    assert sequential.batch_sizes == [2, 2, 2]


def test_configuring_a_server_turns_judging_on(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump({"vlm": {"backend": "openai", "base_url": "http://127.0.0.1:8000/v1",
                                            "model": "Qwen/Qwen3-VL-8B-Instruct"}}))
    assert load_config(path).vlm.enabled
    assert load_config(overrides={"vlm": {"model": "/models/qwen3-vl"}}).vlm.enabled  # transformers, a model set
    assert not load_config().vlm.enabled and not VLMConfig().enabled  # nothing configured: off, as before


@pytest.mark.parametrize("vlm, message", [
    ({"enabled": False, "backend": "openai", "base_url": "http://127.0.0.1:8000/v1", "model": "m"},
     "vlm.enabled is false but model: 'm', base_url"),
    ({"enabled": False, "model": "m"}, "would go unjudged"),
    ({"backend": "openai", "model": "m"}, "base_url is empty"),
    ({"enabled": True}, "vlm.model is empty"),
])
def test_a_contradictory_vlm_config_refuses_to_start(tmp_path: Path, vlm: dict[str, Any], message: str) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump({"vlm": vlm}))
    with pytest.raises(ValueError, match=message):
        load_config(path)
