"""The tiny random Qwen3-VL through the production loader, processor and generate: junk must never pass."""
from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import AutoModelForImageTextToText, AutoProcessor

from schemas.config import VLMConfig
from schemas.vlm import VLMJudgement
from tasks.vlm.backends import VLMRequest
from tasks.vlm.factory import make_backend
from tasks.vlm.judge import judge_windows
from tasks.vlm.parse import ParseError, parse_verdict
from tasks.vlm.prompts import ChatTurn, EventCatalog, get_prompt
from tasks.vlm.tiny import build_tiny_qwen3vl
from tasks.vlm.transformers_backend import TransformersBackend
from tests.vlm.helpers import make_windows


@pytest.fixture(autouse=True)
def one_torch_thread() -> Iterator[None]:
    """The tiny model is latency-bound: on a shared 2-core box OpenMP spin-waits make it 10-20x slower."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def tiny_config(bundle: Path, **overrides: object) -> VLMConfig:
    base: dict[str, object] = dict(enabled=True, backend="transformers", model=str(bundle), num_frames=4,
                                   min_pixels=32 * 32 * 4, max_pixels=64 * 64 * 4, max_new_tokens=24, batch_size=2)
    base.update(overrides)
    return VLMConfig.model_validate(base)


def assert_consistent(judgement: VLMJudgement, catalog: EventCatalog) -> None:
    """Whatever the random model said, the judgement must follow from its raw answer, and junk never passes: a
    random-weight model's answer is never accepted."""
    assert judgement.decision == "rejected" and not judgement.accepted, (judgement.decision, judgement.reason,
                                                                           judgement.raw_excerpt)
    assert judgement.attempts in (1, 2)
    try:
        parse_verdict(judgement.raw_excerpt, catalog.ids())
    except ParseError:
        parsed = False
    else:
        parsed = True
    if judgement.reason == "vlm_unparseable":
        assert judgement.attempts == 2 and judgement.verdict is None
    else:
        assert judgement.verdict is not None and (parsed or len(judgement.raw_excerpt) == 200)


@pytest.mark.timeout(300)
def test_bundle_is_deterministic_and_loads_with_the_production_loader(tmp_path: Path) -> None:
    first = build_tiny_qwen3vl(tmp_path / "a")
    second = build_tiny_qwen3vl(tmp_path / "b")
    digest = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(first.iterdir())}
    assert digest == {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(second.iterdir())}
    processor = AutoProcessor.from_pretrained(first)
    model = AutoModelForImageTextToText.from_pretrained(first)
    assert type(model).__name__ == "Qwen3VLForConditionalGeneration"
    assert type(processor).__name__ == "Qwen3VLProcessor"
    assert model.config.video_token_id == processor.tokenizer.convert_tokens_to_ids("<|video_pad|>")
    assert sum(p.stat().st_size for p in first.iterdir()) < 5 << 20


@pytest.mark.timeout(300)
def test_real_shaped_windows_end_unparseable_or_consistent(tiny_bundle: Path, small_catalog: EventCatalog) -> None:
    catalog = small_catalog
    cfg = tiny_config(tiny_bundle, max_new_tokens=16)
    backend = make_backend(cfg)
    assert isinstance(backend, TransformersBackend) and backend.model == str(tiny_bundle)
    assert backend.dtype.is_floating_point and str(backend.device) == "cpu"
    windows = make_windows(2, shape=(81, 480, 832), seed=1)
    judgements = judge_windows(windows, backend, cfg, catalog)
    assert len(judgements) == 2
    for window, judgement in zip(windows, judgements):
        assert_consistent(judgement, catalog)
        assert (judgement.backend, judgement.model) == ("transformers", str(tiny_bundle))
        assert window.vlm == judgement.model_dump(mode="json")
        if not judgement.accepted:
            assert window.caption == "" and window.tags == []
    assert backend.usage.requests == sum(j.attempts for j in judgements)
    assert 0 < backend.usage.completion_tokens <= backend.usage.requests * cfg.max_new_tokens
    # Greedy decoding: the same windows give the same answers.
    again = judge_windows(make_windows(2, shape=(81, 480, 832), seed=1), backend, cfg, catalog)
    assert [j.raw_excerpt for j in again] == [j.raw_excerpt for j in judgements]


@pytest.mark.timeout(300)
def test_left_padded_batch_matches_single_requests(tiny_bundle: Path, small_catalog: EventCatalog) -> None:
    cfg = tiny_config(tiny_bundle, max_new_tokens=16)
    backend = make_backend(cfg)
    rng = np.random.default_rng(3)
    frames = [rng.integers(0, 256, (4, 96, 160, 3), dtype=np.uint8) for _ in range(2)]
    long_turns = get_prompt(cfg.prompt_version).build(small_catalog, 4, 81 / 16)
    requests = [VLMRequest(frames[0], long_turns), VLMRequest(frames[1], [ChatTurn("user", "Judge.")])]
    batched = backend.generate(requests)
    assert batched == [backend.generate([r])[0] for r in requests]


@pytest.mark.timeout(300)
def test_a_batch_that_raises_is_isolated(tiny_bundle: Path, small_catalog: EventCatalog) -> None:
    catalog = small_catalog
    cfg = tiny_config(tiny_bundle, max_new_tokens=16)
    backend = make_backend(cfg)
    good = make_windows(1, shape=(9, 96, 160), seed=4)
    sliver = make_windows(1, shape=(9, 2, 832), seed=5)  # aspect ratio > 200: the vision preprocessing refuses it
    judgements = judge_windows([sliver[0], good[0]], backend, cfg, catalog)
    assert judgements[0].decision == "failed"
    assert (judgements[0].reason or "").startswith(f"vlm_error: transformers VLM '{tiny_bundle}'")
    assert_consistent(judgements[1], catalog)
