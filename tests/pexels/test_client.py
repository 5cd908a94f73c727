"""The API client against the fake Pexels server: paging, headers, budget, retries, timeouts, auth, cache."""
from __future__ import annotations

import json
import logging
import pickle
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tasks.sources.pexels import (
    ApiKey,
    BudgetExhausted,
    PexelsAPIError,
    PexelsAuthError,
    PexelsClient,
    PexelsRateLimited,
)
from tasks.sources.pexels.client import next_page_number
from tests.pexels.conftest import KEY, make_config, standard_videos
from tests.servers.pexels_server import Fault, PexelsTestServer

pytestmark = pytest.mark.timeout(60)

Make = Callable[..., PexelsTestServer]


def _client(server: PexelsTestServer, store: Path, **overrides: object) -> PexelsClient:
    return PexelsClient(make_config(server, **overrides), store)


def test_search_paginates_via_next_page(make_server: Make, tmp_path: Path) -> None:
    server = make_server(standard_videos("dog-running", 100, 5))
    with _client(server, tmp_path, per_page=2) as client:
        pages, page = [], 1
        while page is not None:
            response = client.search("  Dog   RUNNING ", page)
            pages.append([v["id"] for v in response["videos"]])
            page = next_page_number(response)
    assert pages == [[100, 101], [102, 103], [104]]
    params = server.last_params["search"]
    assert params["query"] == "dog running" and params["per_page"] == "2" and params["orientation"] == "landscape"
    assert params["min_width"] == "832" and params["min_duration"] == "6"
    assert server.api_requests == 3
    assert set(server.seen_auth) == {KEY}  # raw key, no "Bearer"


def test_default_page_size_is_80(make_server: Make, tmp_path: Path) -> None:
    server = make_server(standard_videos("cat", 1, 1))
    with _client(server, tmp_path) as client:
        client.search("cat")
    assert server.last_params["search"]["per_page"] == "80"


def test_env_url_overrides_config(make_server: Make, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    server = make_server(standard_videos("cat", 1, 1))
    monkeypatch.setenv("PEXELS_API_URL", server.base_url.rstrip("/"))
    with _client(server, tmp_path, api_url="http://127.0.0.1:9/nothing/") as client:
        assert client.search("cat")["total_results"] == 1
        assert client.popular()["total_results"] == 1
        assert client.video(1)["id"] == 1


def test_rate_limit_headers_update_the_budget(make_server: Make, tmp_path: Path) -> None:
    server = make_server(standard_videos("cat", 1, 1), ratelimit_limit=20000, ratelimit_remaining=137)
    with _client(server, tmp_path) as client:
        client.search("cat")
        snap = client.budget.snapshot()
    assert snap.server_limit == 20000 and snap.server_remaining == 136
    assert snap.reset_at is not None and snap.run_spent == 1 and snap.hourly_left == 199
    state = json.loads((tmp_path / "state" / "budget.json").read_text())
    assert state["server"]["reset"] == server.ratelimit_reset


def test_server_remaining_zero_blocks_until_reset(make_server: Make, tmp_path: Path) -> None:
    server = make_server(standard_videos("cat", 1, 1), ratelimit_remaining=1)
    with _client(server, tmp_path) as client:
        client.search("cat")
        with pytest.raises(BudgetExhausted, match="no requests remaining"):
            client.search("dog")
    assert server.api_requests == 1


def test_429_without_headers_backs_off_then_succeeds(make_server: Make, tmp_path: Path) -> None:
    server = make_server(standard_videos("cat", 1, 1))
    server.add_fault(Fault("status", status=429), path="/search", times=2)
    with _client(server, tmp_path, retries=3) as client:
        assert client.search("cat")["total_results"] == 1
        snap = client.budget.snapshot()
    assert server.api_requests == 3 and snap.run_spent == 3  # every attempt is counted
    assert snap.last_throttled_at is not None and snap.reset_at is not None  # the reset survives the 429s


def test_429_forever_raises_rate_limited(make_server: Make, tmp_path: Path) -> None:
    server = make_server(standard_videos("cat", 1, 1))
    server.add_fault(Fault("status", status=429), path="/search", times=None)
    with _client(server, tmp_path, retries=2) as client, pytest.raises(PexelsRateLimited, match="429"):
        client.search("cat")
    assert server.api_requests == 3


@pytest.mark.parametrize("status", [500, 503])
def test_5xx_is_retried(make_server: Make, tmp_path: Path, status: int) -> None:
    server = make_server(standard_videos("cat", 1, 1))
    server.add_fault(Fault("status", status=status), path="/search")
    with _client(server, tmp_path) as client:
        assert client.search("cat")["total_results"] == 1
    assert server.api_requests == 2


def test_5xx_forever_fails_with_reason(make_server: Make, tmp_path: Path) -> None:
    server = make_server(standard_videos("cat", 1, 1))
    server.add_fault(Fault("status", status=503), times=None)
    with _client(server, tmp_path, retries=1) as client, pytest.raises(PexelsAPIError) as info:
        client.search("cat")
    assert info.value.reason == "http_503" and server.api_requests == 2


def test_slow_response_times_out_then_retries(make_server: Make, tmp_path: Path) -> None:
    server = make_server(standard_videos("cat", 1, 1))
    server.add_fault(Fault("delay", delay_s=3.0), path="/search")
    with _client(server, tmp_path, request_timeout_s=0.3) as client:
        assert client.search("cat")["total_results"] == 1
    assert server.api_requests == 2


def test_always_slow_fails_with_timeout_reason(make_server: Make, tmp_path: Path) -> None:
    server = make_server(standard_videos("cat", 1, 1))
    server.add_fault(Fault("delay", delay_s=5.0), times=None)
    start = time.monotonic()
    with _client(server, tmp_path, request_timeout_s=0.3, retries=1) as client, \
            pytest.raises(PexelsAPIError) as info:
        client.search("cat")
    assert info.value.reason == "timeout" and time.monotonic() - start < 4


def test_bad_key_fails_fast_without_showing_it(make_server: Make, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch,
                                               caplog: pytest.LogCaptureFixture) -> None:
    server = make_server(standard_videos("cat", 1, 1))
    wrong = "pk-WRONG-key-55aa66bb77cc"
    monkeypatch.setenv("PEXELS_API_KEY", wrong)
    caplog.set_level(logging.DEBUG)
    start = time.monotonic()
    with _client(server, tmp_path, retries=4, backoff_base_s=1.0) as client, \
            pytest.raises(PexelsAuthError) as info:
        client.search("cat")
    assert time.monotonic() - start < 2
    assert "Pexels rejected the API key (HTTP 401)" in str(info.value)
    assert wrong not in str(info.value) and wrong not in repr(info.value) and wrong not in caplog.text
    assert server.api_requests == 1  # not retried


def test_missing_key_is_an_auth_error(make_server: Make, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    server = make_server(standard_videos("cat", 1, 1))
    monkeypatch.delenv("PEXELS_API_KEY")
    with _client(server, tmp_path) as client, pytest.raises(PexelsAuthError, match="PEXELS_API_KEY"):
        client.search("cat")
    assert server.api_requests == 0
    assert client.budget.snapshot().run_spent == 0


def test_cache_avoids_a_second_request_within_ttl(make_server: Make, tmp_path: Path) -> None:
    server = make_server(standard_videos("dog-running", 1, 2))
    with _client(server, tmp_path) as client:
        first = client.search("Dog running")
        second = client.search("dog   RUNNING")  # same normalised query
        assert first == second and client.cache_hits == 1
    with _client(server, tmp_path) as client:  # a new run reuses the cache too, spending nothing
        client.search("dog running")
        assert client.cache_hits == 1 and client.budget.run_spent == 0
    assert server.api_requests == 1
    with _client(server, tmp_path, cache_ttl_s=0.2) as client:
        time.sleep(0.3)
        client.search("dog running")  # expired entry: asked again
        client.search("dog running", page=2)  # other params: another entry
    assert server.api_requests == 3


def test_run_cap_counts_every_attempt(make_server: Make, tmp_path: Path) -> None:
    server = make_server(standard_videos("cat", 1, 1))
    server.add_fault(Fault("status", status=500), times=None)
    with _client(server, tmp_path, max_requests=2, retries=5) as client, \
            pytest.raises(BudgetExhausted, match="run cap of 2"):
        client.search("cat")
    assert server.api_requests == 2


def test_api_key_is_redacted_and_unpicklable() -> None:
    key = ApiKey(KEY)
    assert KEY not in repr(key) and KEY not in str(key) and KEY not in f"{key}"
    assert key.scrub(f"GET ?k={KEY}") == "GET ?k=***"
    with pytest.raises(TypeError):
        pickle.dumps(key)
