"""The retrieval plan is a deterministic function of the taxonomy and the config."""
from __future__ import annotations

import pytest

from schemas.config import PexelsConfig
from taxonomy import Taxonomy
from tasks.sources.pexels import format_plan, plan_pexels, type_quota


def test_plan_is_deterministic_and_ordered_by_importance(tax: Taxonomy) -> None:
    config = PexelsConfig(per_type_quota=4)
    first, second = plan_pexels(tax, config), plan_pexels(tax, config)
    assert first == second
    assert format_plan(first) == format_plan(second)
    assert {t.event_id for t in first.types} == set(tax.ids())
    keys = [(-t.importance, t.event_id) for t in first.types]
    assert keys == sorted(keys)


def test_queries_filters_and_quota_come_from_the_taxonomy(tax: Taxonomy) -> None:
    config = PexelsConfig(per_type_quota=3)
    plan = plan_pexels(tax, config)
    for t in plan.types:
        event = tax.by_id(t.event_id)
        assert list(t.queries) == list(dict.fromkeys(" ".join(k.lower().split()) for k in event.keywords))
        assert list(t.negative_filters) == tax.negative_filters_for(t.event_id)
        assert t.quota == max(1, int(3 * 2 * event.importance + 0.5)) >= 1
    assert plan.total_quota == sum(t.quota for t in plan.types)
    assert plan.max_search_requests == sum(len(t.queries) for t in plan.types) * config.max_pages_per_query


def test_quota_rule() -> None:
    assert type_quota(4, 0.5) == 4
    assert type_quota(4, 1.0) == 8
    assert type_quota(4, 0.0) == 1
    assert type_quota(1, 0.25) == 1  # 0.5 rounds half up
    assert type_quota(2, 0.3) == 1


def test_event_type_selection(tax: Taxonomy) -> None:
    ids = tax.ids()[:3]
    plan = plan_pexels(tax, PexelsConfig(event_types=[ids[0]]), event_types=[ids[2], ids[1], ids[2]])
    assert sorted(t.event_id for t in plan.types) == sorted([ids[1], ids[2]])  # the argument wins, no repeats
    plan = plan_pexels(tax, PexelsConfig(event_types=[ids[0]]))
    assert [t.event_id for t in plan.types] == [ids[0]]
    with pytest.raises(KeyError, match="unknown event type"):
        plan_pexels(tax, PexelsConfig(), event_types=["no_such_event"])


def test_format_plan_lists_every_type_and_the_budget(tax: Taxonomy) -> None:
    plan = plan_pexels(tax, PexelsConfig(max_requests=5))
    text = format_plan(plan)
    assert f"{len(plan.types)} event types" in text
    for t in plan.types:
        assert t.event_id in text and t.queries[0] in text
    assert "run cap (5) is below the worst case" in text
    assert plan.to_dict()["total_quota"] == plan.total_quota
