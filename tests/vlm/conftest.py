"""Shared fixtures for the VLM stage tests: taxonomy, small windows, scripted verdicts, the tiny Qwen3-VL bundle."""
from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tasks.records import Window
from tasks.vlm.prompts import EventCatalog, as_catalog
from taxonomy import Taxonomy, load_taxonomy
from tests.vlm.helpers import make_windows


@pytest.fixture(scope="session")
def taxonomy() -> Taxonomy:
    return load_taxonomy()


@pytest.fixture(scope="session")
def catalog(taxonomy: Taxonomy) -> EventCatalog:
    return as_catalog(taxonomy)


@pytest.fixture(scope="session")
def small_catalog(catalog: EventCatalog) -> EventCatalog:
    """A few event types: keeps prompts short where the tiny model's speed matters more than the taxonomy."""
    return EventCatalog(catalog.entries[:3], catalog.group_guides)


@pytest.fixture(scope="session")
def event_id(taxonomy: Taxonomy) -> str:
    return taxonomy.ids()[0]


@pytest.fixture
def windows() -> Callable[..., list[Window]]:
    return make_windows


@pytest.fixture
def verdict_json(event_id: str) -> Callable[..., str]:
    def make(**overrides: Any) -> str:
        data: dict[str, Any] = {"scene_cut": False, "event_type": event_id, "spatial_occupancy": 0.5,
                                "temporal_occupancy": 0.9, "confidence": 0.8,
                                "caption": "A person walks left to right across the frame."}
        data.update(overrides)
        return json.dumps(data)
    return make


@pytest.fixture(scope="session")
def tiny_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tasks.vlm.tiny import build_tiny_qwen3vl
    return build_tiny_qwen3vl(tmp_path_factory.mktemp("tiny-qwen3vl"))
