"""The VLM stage as a Ray actor pool on CPU, with the OpenAI backend against the scripted server."""
from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import ray

from schemas.config import VLMConfig
from tasks.vlm.prompts import EventCatalog
from tasks.vlm.ray_pool import VLMPool, ensure_ray, judge_windows_on_ray
from tests.servers.openai_server import Reply, ScriptedOpenAIServer, decode_videos
from tests.vlm.helpers import first_frame_level, make_windows

MODEL = "served-qwen3-vl"


@pytest.fixture(scope="module")
def local_ray() -> Iterator[None]:
    started = not ray.is_initialized()
    ensure_ray(num_cpus=2)
    yield
    if started:
        ray.shutdown()


def ray_config(server: ScriptedOpenAIServer, **overrides: object) -> VLMConfig:
    base: dict[str, object] = dict(enabled=True, backend="openai", model=MODEL, base_url=server.base_url,
                                   num_frames=4, batch_size=2, concurrency=2, max_retries=1, retry_backoff_s=0.01,
                                   retry_backoff_max_s=0.02, timeout_s=10.0, num_workers=2, num_cpus_per_worker=0.5)
    base.update(overrides)
    return VLMConfig.model_validate(base)


@pytest.mark.timeout(120)
def test_actor_pool_judges_in_order(local_ray: None, catalog: EventCatalog,
                                    verdict_json: Callable[..., str], event_id: str) -> None:
    levels = [0.9, 0.3, 0.75, 0.6, 0.95]
    windows = make_windows(len(levels), shape=(81, 48, 80))
    for window, level in zip(windows, levels):
        window.frames[:] = round(level * 255)

    def reply(body: dict[str, Any]) -> Reply | str:
        level = round(first_frame_level(body), 2)
        return verdict_json(confidence=level) if level >= 0.5 else "no idea"

    with ScriptedOpenAIServer(reply) as server:
        judgements = judge_windows_on_ray(windows, ray_config(server), catalog)
    assert len(judgements) == len(levels)
    for window, judgement, level in zip(windows, judgements, levels):
        assert window.vlm == judgement.model_dump(mode="json")
        if level >= 0.5:
            assert judgement.decision == "accepted" and judgement.verdict is not None
            assert judgement.verdict.confidence == pytest.approx(level, abs=0.02)
            assert window.tags == [event_id] and window.caption
        else:
            assert (judgement.decision, judgement.reason, judgement.attempts) == ("rejected", "vlm_unparseable", 2)
    assert {r.model for r in server.requests} == {MODEL}
    assert {decode_videos(r.body)[0].frames.shape[0] for r in server.requests} == {4}  # subsampled before sending
    assert len(server.requests) == len(levels) + 1


@pytest.mark.timeout(120)
def test_pool_reuses_loaded_actors_and_reports_failures(local_ray: None, catalog: EventCatalog,
                                                        verdict_json: Callable[..., str]) -> None:
    script: list[Reply | str] = [Reply(status=500, body="down")] * 2
    with ScriptedOpenAIServer(script, default=verdict_json()) as server:
        cfg = ray_config(server, num_workers=1, batch_size=1, concurrency=1)
        with VLMPool(cfg, catalog) as pool:
            first = pool.judge(make_windows(1, seed=1))
            second = pool.judge(make_windows(2, seed=2))
            usage = pool.usage()
    assert first[0].decision == "failed" and f"openai VLM '{MODEL}'" in (first[0].reason or "")
    assert [j.decision for j in second] == ["accepted", "accepted"]
    assert len(usage) == 1 and usage[0].requests == 4 and usage[0].failures == 1


@pytest.mark.timeout(120)
def test_actor_that_cannot_start_fails_its_windows(local_ray: None, catalog: EventCatalog) -> None:
    # openai without a base_url, built past validation: the actor's own validation refuses it, inside the actor
    cfg = VLMConfig.model_construct(**{**VLMConfig().model_dump(), "enabled": True, "backend": "openai",
                                       "model": MODEL, "base_url": "", "num_workers": 1, "num_cpus_per_worker": 0.5})
    judgements = judge_windows_on_ray(make_windows(2), cfg, catalog)
    assert [j.decision for j in judgements] == ["failed", "failed"]
    assert all("on Ray" in (j.reason or "") and "Error" in (j.reason or "") for j in judgements)


@pytest.mark.timeout(120)
def test_tiny_transformers_model_on_ray(local_ray: None, tiny_bundle: Path, small_catalog: EventCatalog) -> None:
    cfg = VLMConfig(enabled=True, backend="transformers", model=str(tiny_bundle), num_frames=4,
                    min_pixels=32 * 32 * 4, max_pixels=64 * 64 * 4, max_new_tokens=16, batch_size=2,
                    num_workers=1, num_cpus_per_worker=1)
    judgements = judge_windows_on_ray(make_windows(3, shape=(81, 96, 160)), cfg, small_catalog)
    assert [j.model for j in judgements] == [str(tiny_bundle)] * 3
    for judgement in judgements:  # random weights: rejected as unparseable unless the junk happens to parse
        assert judgement.decision in ("accepted", "rejected")
        assert judgement.reason != "vlm_unparseable" or judgement.attempts == 2
