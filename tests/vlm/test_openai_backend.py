"""The OpenAI-compatible backend and the judge against a scripted local server."""
from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from schemas.config import VLMConfig
from tasks.records import Window
from tasks.vlm.factory import make_backend
from tasks.vlm.judge import judge_windows
from tasks.vlm.openai_backend import OpenAIBackend
from tasks.vlm.prompts import PROMPT_VERSION, EventCatalog
from tests.servers.openai_server import Reply, ScriptedOpenAIServer
from tests.vlm.helpers import first_frame_level, make_windows

MODEL = "Qwen/Qwen3-VL-8B-Instruct-served-as-this-name"


def config(server: ScriptedOpenAIServer, **overrides: object) -> VLMConfig:
    base: dict[str, object] = dict(enabled=True, backend="openai", model=MODEL, base_url=server.base_url,
                                   num_frames=4, batch_size=1, concurrency=1, max_retries=2, retry_backoff_s=0.01,
                                   retry_backoff_max_s=0.02, timeout_s=5.0, api_key_env="REMIND_TEST_VLM_KEY")
    base.update(overrides)
    return VLMConfig.model_validate(base)


@pytest.fixture
def backend_for() -> Iterator[Callable[[VLMConfig], OpenAIBackend]]:
    made: list[OpenAIBackend] = []

    def make(cfg: VLMConfig) -> OpenAIBackend:
        backend = make_backend(cfg)
        assert isinstance(backend, OpenAIBackend)
        made.append(backend)
        return backend

    yield make
    for backend in made:
        backend.close()


def test_valid_answer_is_accepted_with_scores(windows: Callable[..., list[Window]], catalog: EventCatalog,
                                              verdict_json: Callable[..., str], event_id: str,
                                              backend_for: Callable[[VLMConfig], OpenAIBackend]) -> None:
    with ScriptedOpenAIServer([verdict_json()]) as server:
        cfg = config(server)
        [window] = windows(1)
        [judgement] = judge_windows([window], backend_for(cfg), cfg, catalog)
    assert judgement.decision == "accepted" and judgement.reason is None and judgement.attempts == 1
    assert judgement.verdict is not None and judgement.verdict.spatial_occupancy == 0.5
    assert (judgement.backend, judgement.model, judgement.prompt_version) == ("openai", MODEL, PROMPT_VERSION)
    assert window.vlm == judgement.model_dump(mode="json")
    assert window.caption == judgement.verdict.caption and window.tags == [event_id]
    [request] = server.requests
    assert request.model == MODEL and (request.num_images, request.num_videos) == (0, 1)
    assert request.body["temperature"] == 0 and request.body["response_format"]["type"] == "json_schema"
    assert request.messages[0]["role"] == "system"


def test_prose_wrapped_answer_is_parsed(windows: Callable[..., list[Window]], catalog: EventCatalog,
                                        verdict_json: Callable[..., str],
                                        backend_for: Callable[[VLMConfig], OpenAIBackend]) -> None:
    with ScriptedOpenAIServer([f"Sure, here it is:\n```json\n{verdict_json(confidence=0.7)}\n```"]) as server:
        cfg = config(server)
        [judgement] = judge_windows(windows(1), backend_for(cfg), cfg, catalog)
    assert judgement.decision == "accepted" and judgement.attempts == 1
    assert judgement.verdict is not None and judgement.verdict.confidence == 0.7


def test_invalid_twice_is_unparseable_after_one_retry(windows: Callable[..., list[Window]], catalog: EventCatalog,
                                                      backend_for: Callable[[VLMConfig], OpenAIBackend]) -> None:
    with ScriptedOpenAIServer(["I think it is a cat.", '{"scene_cut": "maybe"}', "never asked"]) as server:
        cfg = config(server)
        [window] = windows(1)
        [judgement] = judge_windows([window], backend_for(cfg), cfg, catalog)
    assert (judgement.decision, judgement.reason, judgement.attempts) == ("rejected", "vlm_unparseable", 2)
    assert judgement.verdict is None and judgement.raw_excerpt == '{"scene_cut": "maybe"}'
    assert len(server.requests) == 2 and window.caption == "" and window.tags == []
    retry = server.requests[1].messages
    assert retry[-2] == {"role": "assistant", "content": "I think it is a cat."}
    assert retry[-1]["content"].startswith("Your previous answer was not valid JSON matching the schema: no JSON")
    assert retry[-1]["content"].endswith("Answer with only the JSON object.")
    assert server.requests[1].num_videos == 1


def test_retry_can_recover(windows: Callable[..., list[Window]], catalog: EventCatalog,
                           verdict_json: Callable[..., str],
                           backend_for: Callable[[VLMConfig], OpenAIBackend]) -> None:
    with ScriptedOpenAIServer(["not json", verdict_json()]) as server:
        cfg = config(server)
        [judgement] = judge_windows(windows(1), backend_for(cfg), cfg, catalog)
    assert (judgement.decision, judgement.attempts) == ("accepted", 2)


def test_unknown_event_id_is_retried_then_rejected(windows: Callable[..., list[Window]], catalog: EventCatalog,
                                                   verdict_json: Callable[..., str],
                                                   backend_for: Callable[[VLMConfig], OpenAIBackend]) -> None:
    with ScriptedOpenAIServer([verdict_json(event_type="ufo"), verdict_json(event_type="ufo_landing")]) as server:
        cfg = config(server)
        [judgement] = judge_windows(windows(1), backend_for(cfg), cfg, catalog)
    assert (judgement.decision, judgement.reason, judgement.attempts) == ("rejected", "vlm_unknown_event_type", 2)
    assert judgement.verdict is not None and judgement.verdict.event_type == "ufo_landing"
    assert "'ufo' is not one of the allowed ids" in server.requests[1].messages[-1]["content"]


def test_server_errors_fail_one_window_and_the_run_continues(
        windows: Callable[..., list[Window]], catalog: EventCatalog, verdict_json: Callable[..., str],
        backend_for: Callable[[VLMConfig], OpenAIBackend]) -> None:
    script: list[Reply | str] = [Reply(status=500, body="boom")] * 3 + [verdict_json()]
    with ScriptedOpenAIServer(script) as server:
        cfg = config(server, max_retries=2)
        first, second = judge_windows(windows(2), backend_for(cfg), cfg, catalog)
    assert first.decision == "failed" and first.attempts == 1
    assert first.reason is not None and first.reason.startswith(f"vlm_error: openai VLM '{MODEL}'")
    assert "after 3 attempt(s)" in first.reason and "HTTP 500" in first.reason
    assert second.decision == "accepted"
    assert len(server.requests) == 4


def test_timeouts_are_bounded(windows: Callable[..., list[Window]], catalog: EventCatalog,
                              backend_for: Callable[[VLMConfig], OpenAIBackend]) -> None:
    with ScriptedOpenAIServer(default=Reply(content="late", delay_s=1.0)) as server:
        cfg = config(server, timeout_s=0.2, max_retries=1)
        [judgement] = judge_windows(windows(1), backend_for(cfg), cfg, catalog)
    assert judgement.decision == "failed" and "Timeout" in (judgement.reason or "")
    assert len(server.requests) == 2


def test_client_errors_are_not_retried(windows: Callable[..., list[Window]], catalog: EventCatalog,
                                       backend_for: Callable[[VLMConfig], OpenAIBackend]) -> None:
    with ScriptedOpenAIServer(default=Reply(status=400, body='{"error": "bad model"}')) as server:
        cfg = config(server)
        [judgement] = judge_windows(windows(1), backend_for(cfg), cfg, catalog)
    assert judgement.decision == "failed" and "HTTP 400" in (judgement.reason or "")
    assert len(server.requests) == 1


def test_malformed_response_fails(windows: Callable[..., list[Window]], catalog: EventCatalog,
                                  backend_for: Callable[[VLMConfig], OpenAIBackend]) -> None:
    with ScriptedOpenAIServer(default=Reply(body='{"choices": []}')) as server:
        cfg = config(server)
        [judgement] = judge_windows(windows(1), backend_for(cfg), cfg, catalog)
    assert judgement.decision == "failed" and "malformed response" in (judgement.reason or "")


def test_concurrent_batches_keep_order_and_key_is_sent_not_logged(
        catalog: EventCatalog, verdict_json: Callable[..., str], backend_for: Callable[[VLMConfig], OpenAIBackend],
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    secret = "sk-test-secret-value"
    monkeypatch.setenv("REMIND_TEST_VLM_KEY", secret)
    levels = [0.9, 0.1, 0.7, 0.6, 0.2, 0.8, 0.95]
    clips = make_windows(len(levels))
    for window, level in zip(clips, levels):
        window.frames[:] = round(level * 255)

    def reply(body: dict[str, Any]) -> Reply | str:
        level = round(first_frame_level(body), 2)  # the answer identifies the window it belongs to
        return verdict_json(confidence=level) if level >= 0.5 else Reply(status=503, body="busy")

    with caplog.at_level(logging.DEBUG), ScriptedOpenAIServer(reply) as server:
        cfg = config(server, batch_size=3, concurrency=3, max_retries=0, json_mode=True)
        backend = backend_for(cfg)
        judgements = judge_windows(clips, backend, cfg, catalog)
    for judgement, level in zip(judgements, levels):
        if level >= 0.5:
            assert judgement.decision == "accepted" and judgement.verdict is not None
            assert judgement.verdict.confidence == pytest.approx(level, abs=0.02)
        else:
            assert judgement.decision == "failed" and "HTTP 503" in (judgement.reason or "")
    assert all(r.has_auth for r in server.requests) and len(server.requests) == len(levels)
    assert all(r.body["response_format"]["type"] == "json_schema" for r in server.requests)
    assert secret not in caplog.text and secret not in repr(backend)
    assert all(secret not in j.model_dump_json() for j in judgements)
    assert backend.usage.requests == len(levels) and backend.usage.failures == 2


def test_base_url_and_model_are_required(catalog: EventCatalog) -> None:
    with pytest.raises(ValueError, match="base_url"):
        make_backend(VLMConfig(backend="openai", model="m"))
    with pytest.raises(ValueError, match="model is empty"):
        make_backend(VLMConfig(backend="openai", base_url="http://127.0.0.1:1/v1"))
