"""pexels_items end to end against the fake server: items, filters, budget across runs, failures, no leaks."""
from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path

import pytest

from schemas.config import Config, PexelsConfig
from taxonomy import Taxonomy
from tasks.sources.pexels import (
    ApiKey,
    PexelsAuthError,
    PexelsPermissionError,
    TypePlan,
    pexels_items,
    plan_pexels,
    require_permission,
)
from tasks.sources.pexels.source import metadata_text
from tests.pexels.conftest import KEY, all_files, make_config
from tests.servers.pexels_server import Fault, PexelsTestServer, VideoSpec

pytestmark = pytest.mark.timeout(120)

Make = Callable[..., PexelsTestServer]


def _types(tax: Taxonomy, n: int) -> list[TypePlan]:
    """The n most important types whose first queries cannot match each other's slugs on the fake server."""
    chosen: list[TypePlan] = []
    for t in plan_pexels(tax, PexelsConfig(per_type_quota=1)).types:
        words = set(t.queries[0].split())
        if all(not words <= set(c.queries[0].split()) and not set(c.queries[0].split()) <= words for c in chosen):
            chosen.append(t)
        if len(chosen) == n:
            return chosen
    raise AssertionError("taxonomy too small")


def _slug(t: TypePlan, suffix: str = "") -> str:
    return "-".join(t.queries[0].split()) + (f"-{suffix}" if suffix else "")


def test_items_provenance_filters_and_stats(make_server: Make, tmp_path: Path, tax: Taxonomy,
                                            library: dict[str, Path]) -> None:
    a, b = _types(tax, 2)
    negative = tax.negative_filters_for(a.event_id)[0]
    videos = [
        VideoSpec(99, _slug(a, _slug(b)), clip="a"),  # matches both types: claimed by the first only
        VideoSpec(100, _slug(a, "-".join(negative.split())), clip="b"),  # negative filter in the slug
        VideoSpec(101, _slug(a), layout="portrait"),  # nothing landscape: skipped
        VideoSpec(102, _slug(a), clip="c", user_name=f"{negative.title()} Studio"),  # creator name is no filter
        *[VideoSpec(103 + i, _slug(a, str(i)), clip="f") for i in range(a.quota)],
        *[VideoSpec(200 + i, _slug(b, str(i)), clip="de"[i % 2]) for i in range(b.quota + 1)],
    ]
    server = make_server(videos)
    config = make_config(server)
    items, stats = pexels_items(config, tmp_path, [a.event_id, b.event_id], tax)
    by_id = {item.clip_id: item for item in items}
    assert "pexels-100" not in by_id and "pexels-101" not in by_id
    assert "pexels-102" in by_id or a.quota == 1
    assert [i.provenance["event_type"] for i in items].count(a.event_id) == a.quota
    assert [i.provenance["event_type"] for i in items].count(b.event_id) == b.quota
    assert by_id["pexels-99"].provenance["event_type"] == a.event_id
    item = by_id["pexels-99"]
    assert item.source == "pexels" and item.error is None and item.uri.startswith("https://www.pexels.com/video/")
    assert item.path is not None and Path(item.path).is_file()
    prov = item.provenance
    assert prov["pexels_id"] == 99 and prov["creator_name"] == "Ada Lovelace" and prov["creator_url"]
    assert prov["page_url"] == item.uri and prov["license"] == "Pexels License"
    assert prov["license_url"] == "https://www.pexels.com/license/" and prov["query"] == a.queries[0]
    assert (prov["width"], prov["height"], prov["fps"], prov["duration_s"]) == (864, 480, 16, 6)
    assert prov["file_id"] == 992 and len(prov["retrieved_at"]) == 10
    assert Path(item.path).name == f"{prov['sha256']}.mp4"
    assert stats.filtered_negative == 1 and stats.unsuitable == {"no_suitable_file": 1}
    assert stats.dedup_skips == 1 and stats.downloads == a.quota + b.quota and not stats.failures
    assert stats.requests_spent == server.api_requests == 2 and stats.budget_exhausted is None
    assert json.loads(json.dumps(stats.to_dict()))["budget_left"]["run_left"] == config.max_requests - 2
    assert all(count == 1 for count in server.file_requests.values())


def test_metadata_text_ignores_the_creator() -> None:
    video = {"url": "https://www.pexels.com/video/a-cartoon-cat-123/", "user": {"name": "Dog Person"},
             "tags": ["Kitten"], "title": "Cute"}
    text = metadata_text(video)
    assert "a cartoon cat" in text and "Kitten" in text and "Cute" in text and "Dog" not in text
    assert "123" not in text


def test_failed_download_is_an_item_with_a_reason(make_server: Make, tmp_path: Path, tax: Taxonomy) -> None:
    (a,) = _types(tax, 1)
    videos = [VideoSpec(300 + i, _slug(a, str(i)), clip="abcdef"[i]) for i in range(a.quota + 1)]
    server = make_server(videos)
    server.add_fault(Fault("cut"), path="/files/3002.mp4", times=None)
    items, stats = pexels_items(make_config(server, retries=1), tmp_path, [a.event_id], tax)
    failed = [i for i in items if i.error]
    assert [i.clip_id for i in failed] == ["pexels-300"] and failed[0].path is None
    assert "truncated" in failed[0].error and failed[0].provenance["sha256"] is None
    assert len(items) == a.quota + 1 and stats.failures == {"truncated": 1}
    assert not [p for p in all_files(tmp_path / "videos") if p.stat().st_size == 0]


def test_two_runs_share_one_budget_and_resume(make_server: Make, tmp_path: Path, tax: Taxonomy) -> None:
    a, b, c = _types(tax, 3)
    videos = [VideoSpec(400 + i, _slug(a, str(i)), clip="abc"[i % 3]) for i in range(a.quota)]
    videos += [VideoSpec(500 + i, _slug(b, str(i)), clip="def"[i % 3]) for i in range(b.quota)]
    videos += [VideoSpec(600, _slug(c), clip="a")]
    server = make_server(videos)
    budget_n = 2
    config = make_config(server, max_requests=1, hourly_limit=budget_n)
    ids = [a.event_id, b.event_id]

    items1, stats1 = pexels_items(config, tmp_path, ids, tax)
    assert stats1.requests_spent == 1 and "run cap of 1" in (stats1.budget_exhausted or "")
    assert {i.provenance["event_type"] for i in items1} == {a.event_id} and stats1.downloads == a.quota

    items2, stats2 = pexels_items(config, tmp_path, ids, tax)
    assert stats2.requests_spent == 1 and stats2.cache_hits == 1 and stats2.reused == a.quota
    assert stats2.downloads == b.quota and stats2.budget_exhausted is None
    assert {i.clip_id for i in items1} < {i.clip_id for i in items2}

    items3, stats3 = pexels_items(config.model_copy(update={"max_requests": 10}), tmp_path, [*ids, c.event_id], tax)
    assert "hourly limit of 2" in (stats3.budget_exhausted or "") and stats3.downloads == 0
    assert stats3.budget_left["hourly_left"] == 0 and len(items3) == len(items2)
    assert server.api_requests == budget_n  # counted by the server, over all three runs
    assert all(count == 1 for count in server.file_requests.values())  # nothing downloaded twice


def test_rate_limit_ends_the_search_phase_cleanly(make_server: Make, tmp_path: Path, tax: Taxonomy) -> None:
    a, b = _types(tax, 2)
    server = make_server([VideoSpec(700, _slug(a)), VideoSpec(701, _slug(b))])
    server.add_fault(Fault("status", status=429), path="/search", times=None)
    items, stats = pexels_items(make_config(server, retries=1), tmp_path, [a.event_id, b.event_id], tax)
    assert items == [] and "429" in (stats.budget_exhausted or "")
    assert server.api_requests == 2  # the second type is not searched
    assert stats.budget_left["last_throttled_at"] is not None


def test_failed_search_is_recorded_and_the_run_continues(make_server: Make, tmp_path: Path, tax: Taxonomy) -> None:
    a, b = _types(tax, 2)
    server = make_server([VideoSpec(800, _slug(a)), VideoSpec(801, _slug(b), clip="b")])
    server.add_fault(Fault("status", status=503), path="/search", times=2)
    items, stats = pexels_items(make_config(server, retries=1, max_pages_per_query=1), tmp_path,
                                [a.event_id, b.event_id], tax)
    assert stats.failures == {"search_http_503": 1}
    assert "pexels-801" in {i.clip_id for i in items}


def test_permission_gate(make_server: Make, tmp_path: Path, tax: Taxonomy) -> None:
    with pytest.raises(PexelsPermissionError) as info:
        require_permission(PexelsConfig(), cli_flag=False)
    text = str(info.value)
    assert "explicit permission" in text and "permission_confirmed: true" in text
    assert "--pexels-permission-confirmed" in text
    require_permission(PexelsConfig(), cli_flag=True)
    require_permission(Config(pexels=PexelsConfig(permission_confirmed=True)), cli_flag=False)
    server = make_server([VideoSpec(900, "x")])
    with pytest.raises(PexelsPermissionError):
        pexels_items(make_config(server, permission_confirmed=False), tmp_path, None, tax)
    assert server.api_requests == 0
    pexels_items(make_config(server, permission_confirmed=False), tmp_path, [tax.ids()[0]], tax, cli_permission=True)
    assert server.api_requests > 0


def test_the_key_never_reaches_files_or_logs(make_server: Make, tmp_path: Path, tax: Taxonomy,
                                             caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    a, b = _types(tax, 2)
    videos = [VideoSpec(1000 + i, _slug(a, str(i)), clip="abcdef"[i]) for i in range(a.quota + 1)]
    videos += [VideoSpec(1100, _slug(b), clip="f")]
    server = make_server(videos)
    server.add_fault(Fault("status", status=429), path="/search")
    server.add_fault(Fault("status", status=500), path="/search", nth=2)
    server.add_fault(Fault("cut"), path="/files/")
    server.expire(1001)
    items, stats = pexels_items(make_config(server, retries=3), tmp_path, [a.event_id, b.event_id], tax)
    assert stats.downloads >= 2
    assert {429, 500, 403} <= {status for _, status in server.log}  # the faults really happened
    texts = [caplog.text, repr(items), json.dumps(stats.to_dict())]
    texts += [p.read_bytes().decode("latin-1") for p in all_files(tmp_path)]
    assert not [t for t in texts if KEY in t]
    with pytest.raises(PexelsAuthError) as info:
        pexels_items(make_config(server, cache_ttl_s=0), tmp_path, [a.event_id], tax,
                     key=ApiKey("pk-other-WRONG-1234"))
    assert "pk-other-WRONG-1234" not in str(info.value) and "pk-other-WRONG-1234" not in caplog.text
