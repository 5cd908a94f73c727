"""UMT5 text conditioning: prompts by source, embeddings cached per prompt and reused, null context when dropped."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from training.config import load_train_config
from training.encode import encode_text_cache, shard_prompts
from training.text import TextCache, TextConditioner, TextEncoder, bundle_path, prompt_for

TINY = Path(__file__).resolve().parents[2] / "configs" / "train-tiny.yaml"


def test_prompt_sources() -> None:
    assert prompt_for("a ball", "occluder passes", "caption") == "a ball"
    assert prompt_for("a ball", "occluder passes", "instruction") == "occluder passes"
    assert prompt_for("a ball", "occluder passes", "both") == "a ball occluder passes"
    assert prompt_for("", None, "caption") is None and prompt_for("a", "", "instruction") is None


def test_embeddings_cached_and_reused(tiny_shards: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = load_train_config(TINY)
    directory = encode_text_cache(tiny_shards, cfg, use_ray=False)
    prompts = shard_prompts(tiny_shards, "caption")
    assert len(prompts) == 4 and TextCache(directory).missing(prompts) == []
    cached = TextCache(directory).get(prompts[0])
    encoder = TextEncoder(cfg.text, bundle_path(cfg.text, 32, directory.parent))
    np.testing.assert_array_equal(cached, encoder.encode([prompts[0]])[0])  # the cache holds the encoder's output
    assert cached.ndim == 2 and cached.shape[1] == 32 and 1 < len(cached) < cfg.text.max_length

    def no_encoder(*args: object, **kwargs: object) -> None:
        raise AssertionError("the second run built a text encoder")

    monkeypatch.setattr(TextEncoder, "__init__", no_encoder)
    assert encode_text_cache(tiny_shards, cfg, use_ray=False) == directory  # second run: every prompt cached

    conditioner = TextConditioner(cfg, directory, 32, "cpu")
    context, status = conditioner.context(prompts[0], None, np.random.default_rng(1))
    assert status == "text" and context.shape == (1, 512, 32)
    np.testing.assert_array_equal(context[0, : len(cached)].numpy(), cached)
    assert float(context[0, len(cached):].abs().sum()) == 0.0  # zero-padded to 512 tokens, as Wan pads
    null, status = conditioner.context(None, None, np.random.default_rng(1))
    assert status == "missing" and float(null.abs().sum()) == 0.0
    dropping = TextConditioner(load_train_config(TINY, {"text": {"cfg_dropout": 1.0}}), directory, 32, "cpu")
    null, status = dropping.context(prompts[0], None, np.random.default_rng(1))
    assert status == "dropped" and float(null.abs().sum()) == 0.0
