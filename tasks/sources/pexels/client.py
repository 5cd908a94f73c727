"""A small Pexels Videos API client: budgeted, cached, retried with jittered backoff, key never exposed."""
from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, urlparse

import requests
from tenacity import RetryCallState, Retrying, retry_if_exception_type, stop_after_attempt, wait_random_exponential

from schemas.config import PexelsConfig
from tasks.sources.pexels.budget import RequestBudget
from tasks.sources.pexels.cache import ResponseCache, normalise_query, request_identity
from tasks.sources.pexels.errors import BudgetExhausted, PexelsAPIError, PexelsAuthError, PexelsRateLimited, TransientError
from tasks.sources.pexels.secrets import ApiKey, LazyKey

log = logging.getLogger(__name__)

USER_AGENT = "remind-curate/0.1 (+pexels-source)"


def resolve_base_url(config: PexelsConfig) -> str:
    """``PEXELS_API_URL`` from the environment, else ``config.api_url``; always ending in '/'."""
    base = os.environ.get("PEXELS_API_URL", "").strip() or config.api_url
    return base if base.endswith("/") else base + "/"


def next_page_number(response: dict[str, Any]) -> int | None:
    """The page number in a response's ``next_page`` URL, or None on the last page.

    Only the number is used: the next request is rebuilt from our own base URL and params, so a server-supplied
    URL never receives the key and the cache key stays normalised.
    """
    next_url = response.get("next_page")
    if not next_url:
        return None
    pages = parse_qs(urlparse(str(next_url)).query).get("page")
    try:
        return int(pages[0]) if pages else int(response.get("page", 1)) + 1
    except (TypeError, ValueError):
        return None


class PexelsClient:
    """GET ``<base>search``, ``<base>popular`` and ``<base>videos/<id>`` as parsed JSON.

    Every attempt (retries included) is reserved in the shared budget before it is sent; cache hits spend nothing.
    """

    def __init__(self, config: PexelsConfig, store_dir: Path, *, key: ApiKey | None = None,
                 session: requests.Session | None = None) -> None:
        self.config = config
        self.base_url = resolve_base_url(config)
        self.key = LazyKey(config, key)
        self.budget = RequestBudget(store_dir / "state" / "budget.json", run_cap=config.max_requests,
                                    hourly_limit=config.hourly_limit, monthly_limit=config.monthly_limit)
        self.cache = ResponseCache(store_dir / "cache", config.cache_ttl_s)
        self.session = session or requests.Session()
        self.cache_hits = 0
        self.offline_reason: str | None = None  # once set, cache misses raise BudgetExhausted with this reason

    def __enter__(self) -> "PexelsClient":
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        self.session.close()

    def search(self, query: str, page: int = 1) -> dict[str, Any]:
        """One page of landscape search results at least ``min_width`` wide and ``min_duration_s`` long."""
        params = {"query": normalise_query(query), "orientation": "landscape", "page": page,
                  "per_page": self.config.per_page, "min_width": self.config.min_width,
                  "min_duration": int(self.config.min_duration_s + 0.999), "locale": self.config.locale or None}
        return self.get_json("search", params)

    def popular(self, page: int = 1) -> dict[str, Any]:
        params = {"page": page, "per_page": self.config.per_page, "min_width": self.config.min_width,
                  "min_duration": int(self.config.min_duration_s + 0.999)}
        return self.get_json("popular", params)

    def video(self, video_id: int, *, use_cache: bool = False) -> dict[str, Any]:
        """One video object. Uncached by default: it is fetched to get fresh (unexpired) file links."""
        return self.get_json(f"videos/{int(video_id)}", {}, use_cache=use_cache)

    def get_json(self, endpoint: str, params: dict[str, Any], *, use_cache: bool = True) -> dict[str, Any]:
        """A cached-or-fetched JSON response. Raises BudgetExhausted, PexelsAuthError or PexelsAPIError."""
        params = {k: v for k, v in params.items() if v is not None}
        identity = request_identity(self.base_url, endpoint, params)
        if use_cache:
            cached = self.cache.get(identity)
            if cached is not None:
                self.cache_hits += 1
                log.debug("Pexels %s: cache hit", endpoint)
                return cached
        if self.offline_reason is not None:
            raise BudgetExhausted(self.offline_reason)
        self.key.get()  # a missing key fails here, before any budget is spent
        retrying = Retrying(
            retry=retry_if_exception_type(TransientError),
            stop=stop_after_attempt(self.config.retries + 1),
            wait=wait_random_exponential(multiplier=self.config.backoff_base_s, max=self.config.backoff_max_s),
            before_sleep=self._log_retry,
            reraise=True,
        )
        try:
            response = retrying(self._attempt, endpoint, params)
        except TransientError as exc:
            attempts = self.config.retries + 1
            if exc.reason == "http_429":
                reset = self.budget.snapshot().reset_at
                raise PexelsRateLimited(
                    f"Pexels answered 429 (rate limited) to {attempts} attempts at {endpoint}; "
                    f"last known quota reset: {reset or 'unknown'}") from None
            raise PexelsAPIError(f"Pexels {endpoint} failed after {attempts} attempts: {exc}", exc.reason) from None
        if use_cache:
            self.cache.put(identity, response)
        return response

    def _attempt(self, endpoint: str, params: dict[str, Any]) -> dict[str, Any]:
        key = self.key.get()
        self.budget.acquire()
        timeout = self.config.request_timeout_s
        try:
            resp = self.session.get(self.base_url + endpoint, params=params, timeout=(timeout, timeout),
                                    headers={"Authorization": key.reveal(), "User-Agent": USER_AGENT})
        except requests.Timeout as exc:
            raise TransientError(f"timeout ({key.scrub(str(exc))})", "timeout") from None
        except requests.ConnectionError as exc:
            raise TransientError(f"connection error ({key.scrub(str(exc))})", "connection_error") from None
        except requests.RequestException as exc:
            raise PexelsAPIError(f"request failed: {key.scrub(str(exc))}", "request_error") from None
        status = resp.status_code
        text = key.scrub(resp.text)  # a server echoing the key must not put it in the cache
        resp.close()
        if status in (401, 403):
            raise PexelsAuthError(
                f"Pexels rejected the API key (HTTP {status}) at {endpoint}: check {self.config.api_key_env} "
                f"or the Prefect Secret block named in pexels.secret_block (the key is not shown)")
        if status == 429:
            self.budget.note_throttled()
            raise TransientError("HTTP 429 (rate limited)", "http_429")
        if status >= 500:
            raise TransientError(f"HTTP {status}", f"http_{status}")
        if status >= 300:
            raise PexelsAPIError(f"Pexels {endpoint} answered HTTP {status}", f"http_{status}")
        self.budget.observe(resp.headers)
        try:
            data = json.loads(text)
        except ValueError:
            raise TransientError("response is not valid JSON", "bad_json") from None
        if not isinstance(data, dict):
            raise PexelsAPIError("response is not a JSON object", "bad_json")
        return data

    def _log_retry(self, state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        reason = getattr(exc, "reason", type(exc).__name__)
        wait = state.next_action.sleep if state.next_action else 0.0
        log.warning("Pexels request failed (%s); retry %d/%d in %.2f s", reason, state.attempt_number,
                    self.config.retries, wait)
