"""The Pexels source: plan -> search (paged, cached, budgeted) -> negative filters -> download -> SourceItems.

Per event type, candidates are taken in search order until the type's quota of stored videos is reached (a failed
download does not count, but a type stops after ``quota`` failures). A video already claimed by an earlier type in
this run, or whose content is already stored under another id, is skipped. When the request budget runs out the
search phase ends cleanly: later types are served from the response cache only, and the stats say why.
"""
from __future__ import annotations

import logging
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import requests

from tasks.sources.pexels.client import PexelsClient, next_page_number
from tasks.sources.pexels.download import DownloadResult, VideoStore, download_video
from tasks.sources.pexels.errors import BudgetExhausted, PexelsAPIError
from tasks.sources.pexels.license import LICENSE_NAME, LICENSE_URL, pexels_config, require_permission
from tasks.sources.pexels.plan import PexelsPlan, TaxonomyLike, TypePlan, plan_pexels
from tasks.sources.pexels.secrets import ApiKey
from tasks.records import SourceItem

log = logging.getLogger(__name__)


@dataclass
class PexelsRunStats:
    """What one retrieval run did and what budget is left."""

    requests_spent: int = 0
    cache_hits: int = 0
    pages: int = 0
    videos_seen: int = 0
    downloads: int = 0
    reused: int = 0
    dedup_skips: int = 0
    filtered_negative: int = 0
    unsuitable: Counter[str] = field(default_factory=Counter)
    failures: Counter[str] = field(default_factory=Counter)
    per_type: dict[str, int] = field(default_factory=dict)  # stored videos per event type
    budget_exhausted: str | None = None
    budget_left: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able summary for the run manifest."""
        return {"requests_spent": self.requests_spent, "cache_hits": self.cache_hits, "pages": self.pages,
                "videos_seen": self.videos_seen, "downloads": self.downloads, "reused": self.reused,
                "dedup_skips": self.dedup_skips, "filtered_negative": self.filtered_negative,
                "unsuitable": dict(sorted(self.unsuitable.items())), "failures": dict(sorted(self.failures.items())),
                "per_type": dict(self.per_type), "budget_exhausted": self.budget_exhausted,
                "budget_left": dict(self.budget_left)}


def metadata_text(video: dict[str, Any]) -> str:
    """The text negative filters are matched against: URL slug, title, alt text and tags (never the creator)."""
    parts: list[str] = []
    segments = [s for s in urlparse(str(video.get("url") or "")).path.split("/") if s]
    if segments:
        parts.append(re.sub(r"-?\d+$", "", segments[-1]).replace("-", " "))
    for name in ("title", "alt"):
        if isinstance(video.get(name), str):
            parts.append(video[name])
    tags = video.get("tags")
    if isinstance(tags, list):
        parts += [str(t) for t in tags]
    return " | ".join(p for p in parts if p)


def _page_url(video: dict[str, Any]) -> str:
    return str(video.get("url") or f"https://www.pexels.com/video/{int(video['id'])}/")


def _item(video: dict[str, Any], tp: TypePlan, query: str, result: DownloadResult) -> SourceItem:
    user = video.get("user") or {}
    f = result.file or {}
    provenance = {
        "pexels_id": int(video["id"]), "creator_name": user.get("name"), "creator_url": user.get("url"),
        "page_url": _page_url(video), "license": LICENSE_NAME, "license_url": LICENSE_URL,
        "retrieved_at": result.retrieved_at or datetime.now(timezone.utc).date().isoformat(), "query": query,
        "event_type": tp.event_id,
        "file_id": f.get("file_id"), "width": f.get("width"), "height": f.get("height"), "fps": f.get("fps"),
        "duration_s": video.get("duration"), "sha256": result.sha256,
    }
    failed = result.status == "failed"
    return SourceItem(clip_id=f"pexels-{int(video['id'])}", source="pexels", uri=_page_url(video),
                      path=None if failed or result.path is None else str(result.path), provenance=provenance,
                      error=f"pexels: {result.reason}" if failed else None)


def _candidates(client: PexelsClient, tp: TypePlan, max_pages: int,
                stats: PexelsRunStats) -> Iterator[tuple[dict[str, Any], str]]:
    """(video, query) in search order over the type's queries and pages; stops quietly when the budget ends."""
    for query in tp.queries:
        page: int | None = 1
        while page is not None and page <= max_pages:
            try:
                response = client.search(query, page)
            except BudgetExhausted as exc:
                if stats.budget_exhausted is None:
                    stats.budget_exhausted = str(exc)
                    log.warning("Pexels search phase ended: %s", exc)
                client.offline_reason = f"search phase ended earlier in this run: {stats.budget_exhausted}"
                break
            except PexelsAPIError as exc:
                stats.failures[f"search_{exc.reason}"] += 1
                log.warning("Pexels search %r page %d failed: %s", query, page, exc)
                break
            stats.pages += 1
            for video in response.get("videos") or []:
                if isinstance(video, dict) and isinstance(video.get("id"), int):
                    yield video, query
            page = next_page_number(response)


def _process(client: PexelsClient, store: VideoStore, taxonomy: TaxonomyLike, tp: TypePlan, video: dict[str, Any],
             query: str, claimed: set[int], items: list[SourceItem], stats: PexelsRunStats) -> str:
    """Filter, download and record one candidate. Returns "stored", "failed" or "skipped"."""
    stats.videos_seen += 1
    video_id = int(video["id"])
    if video_id in claimed:
        stats.dedup_skips += 1
        return "skipped"
    hit = taxonomy.matches_negative(tp.event_id, metadata_text(video))
    if hit is not None:
        stats.filtered_negative += 1
        log.debug("Pexels %d dropped for %s: negative filter %r", video_id, tp.event_id, hit)
        return "skipped"
    claimed.add(video_id)
    result = download_video(client, store, video)
    if result.status == "unsuitable":
        stats.unsuitable[result.reason_code or "unsuitable"] += 1
        return "skipped"
    if result.status == "duplicate":
        stats.dedup_skips += 1
        return "skipped"
    items.append(_item(video, tp, query, result))
    if result.status == "failed":
        stats.failures[result.reason_code or "failed"] += 1
        log.warning("Pexels %d (%s) failed: %s", video_id, tp.event_id, result.reason)
        return "failed"
    stats.downloads += result.status == "downloaded"
    stats.reused += result.status == "reused"
    return "stored"


def pexels_items(config: Any, store_dir: Path, event_types: list[str] | None = None,
                 taxonomy: TaxonomyLike | None = None, *, cli_permission: bool = False, key: ApiKey | None = None,
                 session: requests.Session | None = None,
                 plan: PexelsPlan | None = None) -> tuple[list[SourceItem], PexelsRunStats]:
    """Retrieve Pexels videos for the taxonomy's event types into ``store_dir``; one SourceItem per candidate.

    ``config`` is a Config or PexelsConfig. Refuses (PexelsPermissionError) unless permission is confirmed by the
    config or ``cli_permission``. A rejected key raises PexelsAuthError; budget exhaustion only ends the search.
    Items of failed downloads have ``path=None`` and ``error`` set.
    """
    cfg = pexels_config(config)
    require_permission(cfg, cli_permission)
    if taxonomy is None:
        from taxonomy import load_taxonomy

        taxonomy = load_taxonomy()
    plan = plan or plan_pexels(taxonomy, cfg, event_types)
    store = VideoStore(Path(store_dir))
    store.clean_tmp(older_than_s=cfg.download_timeout_s + 60.0)
    stats = PexelsRunStats()
    items: list[SourceItem] = []
    claimed: set[int] = set()
    with PexelsClient(cfg, Path(store_dir), key=key, session=session) as client:
        try:
            for tp in plan.types:
                stored = failed = 0
                if tp.quota > 0:
                    for video, query in _candidates(client, tp, plan.max_pages_per_query, stats):
                        outcome = _process(client, store, taxonomy, tp, video, query, claimed, items, stats)
                        stored += outcome == "stored"
                        failed += outcome == "failed"
                        if stored >= tp.quota or failed >= tp.quota:
                            break  # before the generator would fetch another page
                stats.per_type[tp.event_id] = stored
                log.info("Pexels %s: %d/%d videos stored", tp.event_id, stored, tp.quota)
        finally:
            stats.requests_spent = client.budget.run_spent
            stats.cache_hits = client.cache_hits
            stats.budget_left = client.budget.snapshot().to_dict()
    return items, stats
