"""A request budget shared by every run using the same store: run cap, hourly and monthly limits, server quota.

State lives in one JSON file (atomic rename, file lock), so concurrent and successive runs agree on what was spent.
Pexels sends ``X-Ratelimit-*`` only on 2xx responses; a 429 carries none, so the last known values are kept.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from tasks.sources.pexels.errors import BudgetExhausted
from tasks.sources.pexels.fileio import locked, read_json, write_json_atomic

log = logging.getLogger(__name__)

HOUR_S = 3600.0


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=timezone.utc).isoformat(timespec="seconds")


def _month(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=timezone.utc).strftime("%Y-%m")


def _int_header(headers: Mapping[str, str], name: str) -> int | None:
    raw = headers.get(name)
    try:
        return int(float(raw)) if raw is not None else None
    except ValueError:
        return None


@dataclass(frozen=True)
class BudgetSnapshot:
    """What is left now. ``None`` means unknown/unlimited."""

    run_spent: int
    run_left: int
    hourly_left: int
    monthly_left: int
    server_limit: int | None
    server_remaining: int | None
    reset_at: str | None
    last_throttled_at: str | None

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


class RequestBudget:
    """Checks and records every API request attempt. ``acquire()`` before sending; ``observe()`` on 2xx."""

    def __init__(self, state_path: Path, *, run_cap: int, hourly_limit: int, monthly_limit: int,
                 clock: Callable[[], float] = time.time) -> None:
        self.state_path = state_path
        self.run_cap = run_cap
        self.hourly_limit = hourly_limit
        self.monthly_limit = monthly_limit
        self.run_spent = 0
        self._clock = clock

    def _load(self, now: float) -> dict[str, Any]:
        state = read_json(self.state_path, {})
        hour = [float(t) for t in state.get("hour_requests", []) if now - float(t) < HOUR_S]
        month = _month(now)
        month_count = int(state.get("month_count", 0)) if state.get("month") == month else 0
        server = dict(state.get("server") or {})
        reset = server.get("reset")
        if reset is not None and now >= float(reset):
            server["remaining"] = None  # the server's period rolled over: its old count is stale
        return {"hour_requests": hour, "month": month, "month_count": month_count, "server": server,
                "last_throttled_at": state.get("last_throttled_at")}

    def _exhausted_reason(self, state: dict[str, Any], now: float) -> str | None:
        if self.run_spent >= self.run_cap:
            return f"run cap of {self.run_cap} requests reached (pexels.max_requests)"
        server = state["server"]
        remaining, reset = server.get("remaining"), server.get("reset")
        if remaining is not None and int(remaining) <= 0:
            until = float(reset) if reset is not None else float(server.get("observed_at", now)) + HOUR_S
            if now < until:
                return f"Pexels reported no requests remaining until {_iso(until)}"
        hour = state["hour_requests"]
        if len(hour) >= self.hourly_limit:
            return (f"hourly limit of {self.hourly_limit} requests reached (pexels.hourly_limit); "
                    f"next slot at {_iso(min(hour) + HOUR_S)}")
        if state["month_count"] >= self.monthly_limit:
            return f"monthly limit of {self.monthly_limit} requests reached (pexels.monthly_limit)"
        return None

    def acquire(self) -> None:
        """Reserve one request or raise BudgetExhausted. The reservation is persisted before the request is sent."""
        with locked(self.state_path):
            now = self._clock()
            state = self._load(now)
            reason = self._exhausted_reason(state, now)
            if reason is not None:
                raise BudgetExhausted(reason)
            state["hour_requests"].append(now)
            state["month_count"] += 1
            if state["server"].get("remaining") is not None:
                state["server"]["remaining"] = int(state["server"]["remaining"]) - 1
            write_json_atomic(self.state_path, state)
            self.run_spent += 1

    def observe(self, headers: Mapping[str, str]) -> None:
        """Remember ``X-Ratelimit-Limit/Remaining/Reset`` from a 2xx response (absent headers change nothing)."""
        limit = _int_header(headers, "X-Ratelimit-Limit")
        remaining = _int_header(headers, "X-Ratelimit-Remaining")
        reset = _int_header(headers, "X-Ratelimit-Reset")
        if limit is None and remaining is None and reset is None:
            return
        with locked(self.state_path):
            now = self._clock()
            state = self._load(now)
            server = state["server"]
            for name, value in (("limit", limit), ("remaining", remaining), ("reset", reset)):
                if value is not None:
                    server[name] = value
            server["observed_at"] = now
            write_json_atomic(self.state_path, state)
        log.debug("Pexels rate limit: remaining=%s limit=%s reset=%s", remaining, limit, reset)

    def note_throttled(self) -> None:
        """Record a 429. It carries no headers, so the remembered reset time stays as it was."""
        with locked(self.state_path):
            now = self._clock()
            state = self._load(now)
            state["last_throttled_at"] = now
            write_json_atomic(self.state_path, state)

    def snapshot(self) -> BudgetSnapshot:
        """The budget left, read from the shared state."""
        with locked(self.state_path):
            now = self._clock()
            state = self._load(now)
        server = state["server"]
        remaining = server.get("remaining")
        monthly_left = max(0, self.monthly_limit - state["month_count"])
        if remaining is not None:
            monthly_left = min(monthly_left, max(0, int(remaining)))
        throttled = state.get("last_throttled_at")
        return BudgetSnapshot(
            run_spent=self.run_spent,
            run_left=max(0, self.run_cap - self.run_spent),
            hourly_left=max(0, self.hourly_limit - len(state["hour_requests"])),
            monthly_left=monthly_left,
            server_limit=server.get("limit"),
            server_remaining=None if remaining is None else int(remaining),
            reset_at=_iso(float(server["reset"])) if server.get("reset") is not None else None,
            last_throttled_at=_iso(float(throttled)) if throttled is not None else None,
        )
