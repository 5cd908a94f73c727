"""A response cache for Pexels API calls (Pexels asks clients to cache for 24 h and normalise queries).

Entries are JSON files named by the hash of the normalised request; the key is never part of a request's identity.
"""
from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from tasks.sources.pexels.fileio import read_json, write_json_atomic

_SECRET_PARAMS = {"authorization", "key", "api_key", "apikey", "token"}


def normalise_query(text: str) -> str:
    """Lowercase with whitespace collapsed: "  Dog  Running" -> "dog running"."""
    return re.sub(r"\s+", " ", text).strip().lower()


def request_identity(base_url: str, endpoint: str, params: Mapping[str, Any]) -> str:
    """A canonical string for a request: base + endpoint + sorted params, query normalised, secrets dropped."""
    clean: dict[str, str] = {}
    for name, value in params.items():
        if value is None or name.lower() in _SECRET_PARAMS:
            continue
        clean[name] = normalise_query(str(value)) if name == "query" else str(value)
    return json.dumps([base_url.rstrip("/") + "/", endpoint, sorted(clean.items())], separators=(",", ":"))


class ResponseCache:
    """JSON responses under ``root``, valid for ``ttl_s`` seconds (0 disables the cache)."""

    def __init__(self, root: Path, ttl_s: float, clock: Callable[[], float] = time.time) -> None:
        self.root = root
        self.ttl_s = ttl_s
        self._clock = clock

    def _path(self, identity: str) -> Path:
        digest = hashlib.sha256(identity.encode()).hexdigest()
        return self.root / digest[:2] / f"{digest}.json"

    def get(self, identity: str) -> dict[str, Any] | None:
        """The cached response, or None when missing, expired or for another request (hash collision guard)."""
        if self.ttl_s <= 0:
            return None
        entry = read_json(self._path(identity), None)
        if not isinstance(entry, dict) or entry.get("request") != identity:
            return None
        if self._clock() - float(entry.get("stored_at", 0.0)) >= self.ttl_s:
            return None
        response = entry.get("response")
        return response if isinstance(response, dict) else None

    def put(self, identity: str, response: dict[str, Any]) -> None:
        if self.ttl_s <= 0:
            return
        write_json_atomic(self._path(identity), {"request": identity, "stored_at": self._clock(),
                                                 "response": response})
