"""The persistent request budget, with an injected clock (no network)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from tasks.sources.pexels import BudgetExhausted, RequestBudget


class Clock:
    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def _budget(path: Path, clock: Clock, run_cap: int = 100, hourly: int = 200, monthly: int = 20000) -> RequestBudget:
    return RequestBudget(path, run_cap=run_cap, hourly_limit=hourly, monthly_limit=monthly, clock=clock)


def test_hourly_limit_is_shared_across_instances_and_slides(tmp_path: Path) -> None:
    clock, path = Clock(), tmp_path / "budget.json"
    first = _budget(path, clock, hourly=3)
    first.acquire()
    first.acquire()
    second = _budget(path, clock, hourly=3)  # another run, same store
    second.acquire()
    with pytest.raises(BudgetExhausted, match="hourly limit of 3"):
        second.acquire()
    assert second.snapshot().hourly_left == 0 and second.run_spent == 1
    clock.now += 3601
    second.acquire()
    assert json.loads(path.read_text())["month_count"] == 4


def test_run_cap_and_monthly_limit(tmp_path: Path) -> None:
    clock, path = Clock(), tmp_path / "budget.json"
    budget = _budget(path, clock, run_cap=1)
    budget.acquire()
    with pytest.raises(BudgetExhausted, match="run cap of 1"):
        budget.acquire()
    monthly = _budget(path, clock, monthly=1)
    with pytest.raises(BudgetExhausted, match="monthly limit of 1"):
        monthly.acquire()
    clock.now += 40 * 24 * 3600  # next month
    monthly.acquire()


def test_server_quota_is_remembered_until_its_reset(tmp_path: Path) -> None:
    clock, path = Clock(), tmp_path / "budget.json"
    budget = _budget(path, clock)
    reset = int(clock.now) + 600
    budget.observe({"X-Ratelimit-Limit": "20000", "X-Ratelimit-Remaining": "1", "X-Ratelimit-Reset": str(reset)})
    budget.acquire()  # spends the last one locally, before the server says so
    budget.note_throttled()  # a 429 has no headers: the reset time must survive it
    snap = budget.snapshot()
    assert snap.server_remaining == 0 and snap.reset_at is not None and snap.last_throttled_at is not None
    with pytest.raises(BudgetExhausted, match="no requests remaining until"):
        _budget(path, clock).acquire()
    clock.now = reset + 1
    _budget(path, clock).acquire()


def test_observe_ignores_missing_headers_and_state_survives_garbage(tmp_path: Path) -> None:
    clock, path = Clock(), tmp_path / "budget.json"
    budget = _budget(path, clock)
    budget.observe({})
    assert not path.exists()
    path.write_text("{not json")
    budget.acquire()
    assert json.loads(path.read_text())["month_count"] == 1
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
