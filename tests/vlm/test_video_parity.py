"""Both backends see one video: the same frames, fps and pixel budget; structured output where the server has it."""
from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from qwen_vl_utils import process_vision_info

from schemas.config import VLMConfig
from schemas.vlm import VERDICT_FIELDS
from tasks.records import Window
from tasks.vlm.backends import VLMRequest, video_size
from tasks.vlm.judge import clip_input, judge_windows
from tasks.vlm.openai_backend import OpenAIBackend
from tasks.vlm.prompts import ChatTurn, EventCatalog
from tasks.vlm.transformers_backend import TransformersBackend
from tests.servers.openai_server import Reply, ScriptedOpenAIServer, decode_videos

BUDGET = dict(min_pixels=32 * 32 * 4, max_pixels=64 * 64 * 8)


def _openai(server: ScriptedOpenAIServer, **overrides: Any) -> OpenAIBackend:
    cfg = VLMConfig.model_validate({"backend": "openai", "model": "served", "base_url": server.base_url,
                                    "num_frames": 4, "batch_size": 1, "concurrency": 1, "max_retries": 0,
                                    "timeout_s": 10.0, **BUDGET, **overrides})
    return OpenAIBackend(cfg)


def test_both_backends_receive_the_same_frames_fps_and_pixel_budget(tiny_bundle: Path) -> None:
    yy, xx = np.mgrid[0:120, 0:208]  # a coloured scene with a square moving right, like a real clip
    frames = np.zeros((4, 120, 208, 3), np.uint8)
    for t in range(4):
        frames[t] = np.stack([xx * 255 // 207, yy * 255 // 119, np.full_like(xx, 90)], axis=-1)
        frames[t, 40:80, 20 + 30 * t:60 + 30 * t] = (230, 40, 160)
    request = VLMRequest(frames, [ChatTurn("user", "judge")], duration_s=81 / 16)

    local = TransformersBackend(VLMConfig(backend="transformers", model=str(tiny_bundle), num_frames=4, **BUDGET))
    expected = request.video(local.config)
    h, w = video_size(120, 208, **BUDGET)
    assert expected.frames.shape == (4, h, w, 3) and h * w <= BUDGET["max_pixels"] and h % 32 == w % 32 == 0
    # What qwen-vl-utils hands the processor: exactly the prepared frames (its own resize is the identity).
    _, videos, video_kwargs = process_vision_info([local.messages(request)], return_video_kwargs=True,
                                                  return_video_metadata=True, image_patch_size=16)
    [(tensor, metadata)] = videos
    assert video_kwargs == {"do_sample_frames": False}
    np.testing.assert_allclose(tensor.permute(0, 2, 3, 1).numpy(), expected.frames, atol=1.0)
    assert metadata["fps"] == pytest.approx(4 / (81 / 16)) and metadata["frames_indices"] == [0, 1, 2, 3]
    inputs = local._inputs([request])
    assert inputs["video_grid_thw"].tolist() == [[4 // 2, h // 16, w // 16]]  # (T/2, H/16, W/16): 2-frame merge
    prompt = local.processor.tokenizer.decode(inputs["input_ids"][0])
    first_pair = (0 + 1 / expected.fps) / 2  # Qwen3-VL stamps each merged frame pair with its mean time
    assert f"<{first_pair:.1f} seconds>" in prompt

    with ScriptedOpenAIServer(default=Reply("{}")) as server:
        remote = _openai(server)
        remote.generate([request])
        remote.close()
    [recorded] = server.requests
    [video] = decode_videos(recorded.body)
    assert recorded.num_images == 0 and recorded.num_videos == 1 and video.media_type == "video/mp4"
    assert video.frames.shape == expected.frames.shape  # every frame, same size: no resampling, same budget
    assert video.fps == pytest.approx(expected.fps, rel=1e-3)
    assert video.times_s == pytest.approx([i / expected.fps for i in range(4)], abs=1e-3)
    assert np.abs(video.frames.astype(float) - expected.frames).mean() < 2.0  # H.264 4:4:4 at crf 10: rounding only
    assert recorded.body["mm_processor_kwargs"] == video_kwargs  # the server's processor is told the same


def test_structured_output_is_requested_and_a_refusal_falls_back_cleanly(
        windows: Callable[..., list[Window]], catalog: EventCatalog, verdict_json: Callable[..., str]) -> None:
    def reply(body: dict[str, Any]) -> Reply | str:
        if "response_format" in body:
            return Reply(status=400, body=json.dumps({"object": "error", "message":
                                                      "response_format type json_schema is not supported"}))
        return verdict_json()

    with ScriptedOpenAIServer(reply) as server:
        backend = _openai(server)
        judgements = judge_windows(windows(2), backend, backend.config, catalog)
        backend.close()
    assert [j.decision for j in judgements] == ["accepted", "accepted"]
    first, retried, second = server.requests  # refused once, asked again without, then never asked again
    schema = first.body["response_format"]["json_schema"]["schema"]
    assert first.body["response_format"]["type"] == "json_schema"
    assert schema["required"] == list(VERDICT_FIELDS) and schema["additionalProperties"] is False
    assert set(schema["properties"]["event_type"]["anyOf"][0]["enum"]) == set(catalog.ids())
    assert "response_format" not in retried.body and "response_format" not in second.body
    assert backend.usage.extra["structured_output_refused"] == 1.0


def test_a_server_that_answers_prose_is_rejected_never_accepted(
        windows: Callable[..., list[Window]], catalog: EventCatalog) -> None:
    prose = "The clip shows a glass being filled with water; the level rises. I am fairly confident."
    with ScriptedOpenAIServer(default=Reply(prose)) as server:
        backend = _openai(server)
        [window] = windows(1)
        window.tags = ["container_filling"]
        [judgement] = judge_windows([window], backend, backend.config, catalog)
        backend.close()
    assert (judgement.decision, judgement.reason, judgement.attempts) == ("rejected", "vlm_unparseable", 2)
    assert all(r.body["response_format"]["type"] == "json_schema" for r in server.requests)
    assert window.caption == "" and window.tags == ["container_filling"] and judgement.verdict is None


def test_clip_input_keeps_the_windows_real_duration() -> None:
    frames = np.zeros((81, 32, 32, 3), np.uint8)
    from tasks.records import SourceItem
    window = Window(SourceItem("c", "local", "u"), 0, 0, frames, (0.0, 81 / 16))
    clip = clip_input(window, 8)
    assert len(clip.frames) == 8 and clip.duration_s == pytest.approx(81 / 16)
    assert re.fullmatch(r"c-w00", clip.clip_id)
