"""The retrieval plan: which Pexels queries to run for which taxonomy event types, and how many videos to keep.

Rules (deterministic for a given taxonomy and config):
- event types are searched in order of decreasing importance (ties by id), so a limited request budget is spent
  on the most useful dynamics first;
- each type's queries are its keywords, normalised (lowercase, single spaces), in taxonomy order, without repeats;
- quota (videos to download for the type) = max(1, floor(per_type_quota * 2 * importance + 0.5)): a type of
  importance 0.5 gets exactly ``per_type_quota``, importance 1.0 twice that, and every type at least one;
- negative filters (the type's own, then the taxonomy defaults it does not exempt) are matched against a video's
  URL slug, title and tags; never against the creator's name.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from schemas.config import PexelsConfig
from tasks.sources.pexels.cache import normalise_query


class _Event(Protocol):
    @property
    def id(self) -> str: ...

    @property
    def group(self) -> str: ...

    @property
    def name(self) -> str: ...

    @property
    def keywords(self) -> Sequence[str]: ...

    @property
    def negative_filters(self) -> Sequence[str]: ...

    @property
    def importance(self) -> float: ...


class TaxonomyLike(Protocol):
    """The part of :class:`taxonomy.Taxonomy` the Pexels source uses."""

    @property
    def events(self) -> Sequence[Any]: ...

    @property
    def default_negative_filters(self) -> Sequence[str]: ...

    def by_id(self, event_id: str) -> Any: ...

    def matches_negative(self, event_id: str, text: str) -> str | None: ...


def type_quota(per_type_quota: int, importance: float) -> int:
    """Videos to download for a type: max(1, round-half-up(per_type_quota * 2 * importance))."""
    return max(1, math.floor(per_type_quota * 2.0 * importance + 0.5))


@dataclass(frozen=True)
class TypePlan:
    """Retrieval for one event type."""

    event_id: str
    group: str
    name: str
    importance: float
    quota: int
    queries: tuple[str, ...]
    negative_filters: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"event_id": self.event_id, "group": self.group, "name": self.name, "importance": self.importance,
                "quota": self.quota, "queries": list(self.queries), "negative_filters": list(self.negative_filters)}


@dataclass(frozen=True)
class PexelsPlan:
    """Every type's retrieval, in search order, with the request bounds that apply."""

    types: tuple[TypePlan, ...]
    per_page: int
    max_pages_per_query: int
    max_requests: int
    default_negative_filters: tuple[str, ...] = ()

    @property
    def total_quota(self) -> int:
        return sum(t.quota for t in self.types)

    @property
    def max_search_requests(self) -> int:
        """Upper bound on search requests if no quota fills early and nothing is cached."""
        return sum(len(t.queries) for t in self.types) * self.max_pages_per_query

    def to_dict(self) -> dict[str, Any]:
        return {"types": [t.to_dict() for t in self.types], "per_page": self.per_page,
                "max_pages_per_query": self.max_pages_per_query, "max_requests": self.max_requests,
                "default_negative_filters": list(self.default_negative_filters), "total_quota": self.total_quota,
                "max_search_requests": self.max_search_requests}


def _negative_filters(tax: TaxonomyLike, event: _Event) -> tuple[str, ...]:
    effective = getattr(tax, "negative_filters_for", None)
    if effective is not None:
        return tuple(effective(event.id))
    merged = list(event.negative_filters) + [d for d in tax.default_negative_filters if d not in event.negative_filters]
    return tuple(merged)


def _queries(keywords: Sequence[str]) -> tuple[str, ...]:
    out: list[str] = []
    for keyword in keywords:
        query = normalise_query(keyword)
        if query and query not in out:
            out.append(query)
    return tuple(out)


def plan_pexels(tax: TaxonomyLike, config: PexelsConfig, event_types: Sequence[str] | None = None) -> PexelsPlan:
    """The plan for ``event_types`` (else ``config.event_types``, else every type). Unknown ids raise KeyError."""
    wanted = list(event_types) if event_types else list(config.event_types)
    events: list[_Event] = [tax.by_id(i) for i in dict.fromkeys(wanted)] if wanted else list(tax.events)
    events.sort(key=lambda e: (-e.importance, e.id))
    types = tuple(
        TypePlan(event_id=e.id, group=str(e.group), name=e.name, importance=float(e.importance),
                 quota=type_quota(config.per_type_quota, e.importance), queries=_queries(e.keywords),
                 negative_filters=_negative_filters(tax, e))
        for e in events)
    return PexelsPlan(types=types, per_page=config.per_page, max_pages_per_query=config.max_pages_per_query,
                      max_requests=config.max_requests,
                      default_negative_filters=tuple(tax.default_negative_filters))


def format_plan(plan: PexelsPlan) -> str:
    """A human-readable table of the plan (printed by ``remind-curate plan-pexels``).

    Default filters are listed once; each row shows the type's own filters and the defaults it exempts.
    """
    defaults = plan.default_negative_filters
    lines = [
        f"Pexels retrieval plan: {len(plan.types)} event types, {plan.total_quota} videos wanted",
        f"search requests: at most {plan.max_search_requests} "
        f"({plan.max_pages_per_query} page(s) of {plan.per_page} per query); run cap {plan.max_requests}",
        f"default negative filters (slug/title/tags): {', '.join(defaults) or '-'}",
        "",
        f"{'#':>3}  {'event type':<28} {'group':<16} {'imp':>5} {'quota':>5}  queries | own filters",
    ]
    for rank, t in enumerate(plan.types, 1):
        own = [f for f in t.negative_filters if f not in defaults]
        exempt = [f for f in defaults if f not in t.negative_filters]
        filters = ", ".join(own) or "-"
        if exempt:
            filters += f" (exempt from: {', '.join(exempt)})"
        lines.append(f"{rank:>3}  {t.event_id:<28} {t.group:<16} {t.importance:>5.3f} {t.quota:>5}  "
                     f"{'; '.join(t.queries)} | {filters}")
    if plan.max_search_requests > plan.max_requests:
        lines += ["", f"note: the run cap ({plan.max_requests}) is below the worst case; lower-importance types "
                      "are searched last and may be reached only by a later run (cached responses are reused)."]
    return "\n".join(lines)
