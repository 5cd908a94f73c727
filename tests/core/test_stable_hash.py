"""One config hash (``stable_hash``) behind every config-derived hash and cache key.

PINNED REGRESSION VALUES: the hex strings below were computed from the code *before* the four hashes were moved onto
``stable_hash`` (issue #24) and hard-coded here on purpose. They must never change: OUT folders store ``clip_hash``
and ``config_hash`` in run.json and the ledger, and the latent and text caches are named by ``vae_tag`` and
``text_tag``. A changed value here means existing runs no longer resume and caches are silently rebuilt.
"""
from __future__ import annotations

from typing import Any, ClassVar

from engine.run import CLIP_SECTIONS, _clip_hash
from schemas.config_section import RootConfig, Section, stable_hash
from training.text import text_tag
from training.vae import vae_tag


class _Dumped:
    """A fixed ``model_dump``: the pinned values do not move when a config's defaults do."""

    def __init__(self, data: dict[str, Any]) -> None:
        self.data = data

    def model_dump(self, mode: str = "python", exclude: set[str] | None = None) -> dict[str, Any]:
        return {k: v for k, v in self.data.items() if k not in (exclude or set())}


class _Inner(Section):
    b: list[int] = [1, 2]
    a: str = "x é"


class _Root(RootConfig):
    z: _Inner = _Inner()
    a: dict[str, float] = {"k": 0.5, "j": 1.0}
    HASH_CHARS: ClassVar[int] = 16


def _clip_input() -> dict[str, Any]:
    data: dict[str, Any] = {k: {"value": i, "name": f"s{i}", "nested": {"b": [1, 2.5], "a": None}}
                            for i, k in enumerate(CLIP_SECTIONS)}
    return {**data, "seed": 7, "extra": 1}


def test_section_hash_values_are_pinned() -> None:
    assert _Root().section_hash() == "cf68c6dd4cc3d7ac"
    assert _Root().section_hash("z") == "f6844d982337695e"


def test_clip_hash_value_is_pinned() -> None:
    assert CLIP_SECTIONS == ("normalise", "prefilter", "vlm", "geometry", "augment", "encode", "synthetic",
                             "sources", "seed")
    assert _clip_hash(_Dumped(_clip_input())) == "5420dc5873ebb199"  # type: ignore[arg-type]


def test_vae_tag_value_is_pinned() -> None:
    cfg = _Dumped({"seed": 3, "pretrained": None, "base_dim": 8, "name": "wan é"})
    assert vae_tag(cfg, 64, 96) == "6d6816b53c5d"  # type: ignore[arg-type]


def test_text_tag_value_is_pinned() -> None:
    cfg = _Dumped({"encoder": "umt5", "max_length": 512, "source": "caption", "cfg_dropout": 0.1, "encode_gpus": 1,
                   "z": [1, {"b": 2, "a": 1}]})
    assert text_tag(cfg, 32) == "849f19a83b1a"  # type: ignore[arg-type]


def test_stable_hash_forms() -> None:
    data = {"b": [1, 2], "a": {"y": None, "x": "é"}}
    assert stable_hash(data) == stable_hash({"a": {"x": "é", "y": None}, "b": [1, 2]})  # key order never matters
    assert stable_hash(data, chars=12) == stable_hash(data)[:12]
    assert stable_hash(data) != stable_hash(data, compact=False)  # the two JSON forms are two hashes
    assert len(stable_hash(data, chars=64)) == 64
