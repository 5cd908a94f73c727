"""Fixtures for the Pexels tests: a session-wide clip library, a fake Pexels server per test, configs."""
from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from schemas.config import PexelsConfig
from taxonomy import Taxonomy, load_taxonomy
from tests.servers.pexels_server import PexelsTestServer, VideoSpec, build_library

KEY = "pk-SECRET-7f3a9c2e5b1d4e60"  # distinctive, so a leak anywhere is greppable


@pytest.fixture(scope="session")
def library(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return build_library(tmp_path_factory.mktemp("pexels-library"))


@pytest.fixture(scope="session")
def tax() -> Taxonomy:
    return load_taxonomy()


@pytest.fixture(autouse=True)
def _pexels_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PEXELS_API_KEY", KEY)
    monkeypatch.delenv("PEXELS_API_URL", raising=False)


@pytest.fixture
def make_server(library: dict[str, Path]) -> Iterator[Callable[..., PexelsTestServer]]:
    started: list[PexelsTestServer] = []

    def make(videos: list[VideoSpec], **kwargs: Any) -> PexelsTestServer:
        server = PexelsTestServer(library, videos, key=KEY, **kwargs).start()
        started.append(server)
        return server

    yield make
    for server in started:
        server.stop()


def make_config(server: PexelsTestServer, **overrides: Any) -> PexelsConfig:
    """A config pointing at the test server, with tiny backoff waits and short timeouts."""
    values: dict[str, Any] = {
        "api_url": server.base_url, "permission_confirmed": True, "backoff_base_s": 0.001, "backoff_max_s": 0.01,
        "request_timeout_s": 2.0, "download_timeout_s": 10.0, "retries": 2, "max_requests": 50,
        "per_type_quota": 1, "max_pages_per_query": 2,
    }
    values.update(overrides)
    return PexelsConfig(**values)


def standard_videos(slug: str, first_id: int, count: int, clips: str = "abcdef") -> list[VideoSpec]:
    """``count`` downloadable landscape videos whose slugs contain ``slug``."""
    return [VideoSpec(id=first_id + i, slug=f"{slug}-{i}", clip=clips[i % len(clips)]) for i in range(count)]


def all_files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()]
