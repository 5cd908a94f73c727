"""`remind-curate ingest --source pexels:...` end to end: the real flow (in-process, real Prefect API) against the
fake Pexels server on 127.0.0.1. Budget across runs, resume, attribution in the shards, faults, the key, the gate.

The fake server's MP4s show a striped box sliding and growing over a textured mosaic (6 s, 16 fps, 864x480), so
they pass the motion pre-filter and scene-cut detection. Geometry is off and augmentation is ``none`` only: they
are not what is under test here, and each would cost seconds per clip.
"""
from __future__ import annotations

import datetime as dt
import json
import logging
import os
import tarfile
import traceback
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import prefect.main  # noqa: F401 - Prefect configures logging on import: do it before caplog attaches its handler
import pyarrow.parquet as pq
import pytest
import yaml

from schemas.config import PexelsConfig
from tasks.sources.pexels import LICENSE_NAME, LICENSE_URL, PexelsAuthError, PexelsPermissionError, TypePlan, plan_pexels
from taxonomy import Taxonomy
from tests.pexels.conftest import KEY
from tests.servers.pexels_server import Fault, PexelsTestServer, VideoSpec

Make = Callable[..., PexelsTestServer]


# -- helpers -------------------------------------------------------------------------------------------------------
def _types(tax: Taxonomy, n: int) -> list[TypePlan]:
    """``n`` event types with quota 1 (at per_type_quota 1) whose first queries cannot match each other's slugs."""
    chosen: list[TypePlan] = []
    for t in plan_pexels(tax, PexelsConfig(per_type_quota=1)).types:
        words = set(t.queries[0].split())
        if t.quota != 1 or any(words <= set(c.queries[0].split()) or set(c.queries[0].split()) <= words
                               for c in chosen):
            continue
        chosen.append(t)
        if len(chosen) == n:
            return chosen
    raise AssertionError("taxonomy too small")


def _slug(t: TypePlan) -> str:
    return "-".join(t.queries[0].split())


def _video(video_id: int, t: TypePlan, clip: str) -> VideoSpec:
    return VideoSpec(video_id, _slug(t), clip=clip, user_name=f"Creator {video_id}")


def _file_path(video_id: int) -> str:
    """The server path of the 864x480 file: the smallest landscape file at least 832 wide (what is downloaded)."""
    return f"/files/{video_id * 10 + 2}.mp4"


def _config(path: Path, **pexels: Any) -> Path:
    """A run config: cheap stages (no geometry, no interruption), tiny Pexels waits, permission NOT in the file."""
    mixture = {kind: 0.0 for kind in ("camera_loop", "light_toggle", "occluder", "zoom", "exit_entry")}
    data = {
        "geometry": {"backend": "none"},
        "augment": {"mixture": {"none": 1.0, **mixture}},
        "pexels": {"permission_confirmed": False, "per_type_quota": 1, "max_pages_per_query": 1,
                   "backoff_base_s": 0.001, "backoff_max_s": 0.01, "request_timeout_s": 5.0,
                   "download_timeout_s": 20.0, "retries": 2, "max_requests": 50, **pexels},
    }
    path.write_text(yaml.safe_dump(data))
    return path


def _ingest(types: Iterable[TypePlan], out: Path, cfg: Path, permission: bool = True) -> dict[str, Any]:
    from flows.ingest import ingest

    return ingest(source="pexels:" + ",".join(t.event_id for t in types), out=str(out), config_path=str(cfg),
                  pexels_permission_confirmed=permission)


def _manifest(out: Path) -> dict[str, dict[str, Any]]:
    rows = pq.read_table(out / "manifest.parquet").to_pylist()
    assert len({r["clip_id"] for r in rows}) == len(rows)  # one window per 6 s clip
    return {r["clip_id"]: r for r in rows}


def _shard_metas(out: Path) -> dict[str, dict[str, Any]]:
    """meta.json of every sample in every shard, by sample key."""
    metas: dict[str, dict[str, Any]] = {}
    for shard in sorted((out / "shards").glob("*.tar")):
        with tarfile.open(shard) as tar:
            for member in tar.getmembers():
                if member.name.endswith(".meta.json"):
                    key = member.name[: -len(".meta.json")]
                    assert key not in metas, f"{key} packed twice"
                    metas[key] = json.loads(tar.extractfile(member).read())  # type: ignore[union-attr]
    return metas


def _prefect_db_dir() -> Path | None:
    from prefect.settings import PREFECT_SERVER_DATABASE_CONNECTION_URL

    url = PREFECT_SERVER_DATABASE_CONNECTION_URL.value() or ""
    return Path(url.split("///", 1)[1]).parent if url.startswith("sqlite") and "///" in url else None


def _files_containing(secret: str, roots: Iterable[Path]) -> list[str]:
    needle = secret.encode()
    hits, scanned = [], 0
    for root in roots:
        for path in root.rglob("*"):
            if path.is_file() and not path.is_symlink():
                try:
                    data = path.read_bytes()
                except OSError:  # a file removed while we walk (another test's Prefect bookkeeping)
                    continue
                scanned += 1
                if needle in data:
                    hits.append(str(path))
    assert scanned > 0
    return hits


def _assert_key_absent(secret: str, out: Path, texts: Iterable[str]) -> None:
    """The key is in no file of OUT, of PREFECT_HOME, of the Prefect API's database, nor in any captured text."""
    for sub in ("shards", "manifest.parquet", "report.md", "metrics.json", "config.yaml", "cache", "pexels"):
        assert (out / sub).exists(), f"{sub} missing: the scan would prove nothing"
    roots = [out, Path(os.environ["PREFECT_HOME"])]
    db_dir = _prefect_db_dir()
    if db_dir is not None and db_dir.is_dir():
        roots.append(db_dir)
    assert _files_containing(secret, roots) == []
    leaked = [t[:200] for t in texts if secret in t]
    assert leaked == []


def _exception_texts(exc: BaseException) -> list[str]:
    return [str(exc), repr(exc), "".join(traceback.format_exception(exc))]


@pytest.fixture
def pexels_url(monkeypatch: pytest.MonkeyPatch) -> Callable[[PexelsTestServer], None]:
    def point(server: PexelsTestServer) -> None:
        monkeypatch.setenv("PEXELS_API_URL", server.base_url)

    monkeypatch.delenv("REMIND_DEBUG", raising=False)
    return point


# -- 1 + 5: a budget shared by two runs, resume, attribution, the report ------------------------------------------
@pytest.mark.slow
@pytest.mark.timeout(300)
def test_two_runs_spend_one_budget_resume_and_attribute(prefect_server: None, make_server: Make,
                                                        pexels_url: Callable[[PexelsTestServer], None],
                                                        tmp_path: Path, tax: Taxonomy) -> None:
    types = _types(tax, 4)
    videos = [_video(101 + i, t, clip) for i, (t, clip) in enumerate(zip(types, "abcd"))]
    server = make_server(videos)
    pexels_url(server)
    budget_n = 3  # the monthly limit lives in the store's state: both runs draw on it
    cfg = _config(tmp_path / "config.yaml", max_requests=2, monthly_limit=budget_n)
    out = tmp_path / "out"

    first = _ingest(types, out, cfg)
    source1 = first["source_stats"]
    assert server.api_requests == 2 and source1["requests_spent"] == 2
    assert "run cap of 2" in source1["budget_exhausted"]
    assert source1["budget_left"]["run_left"] == 0 and source1["budget_left"]["monthly_left"] == budget_n - 2
    assert first["status"] == {"accepted": 2} and first["clips_processed"] == 2
    report1 = (out / "report.md").read_text()
    assert "requests_spent: 2" in report1 and "budget_left:" in report1
    assert f"'monthly_left': {budget_n - 2}" in report1 and "'run_left': 0" in report1

    second = _ingest(types, out, cfg)
    source2 = second["source_stats"]
    assert server.api_requests == budget_n  # counted by the server, over both runs: never more than N
    assert source2["requests_spent"] == 1 and source2["cache_hits"] == 2 and source2["reused"] == 2
    assert source2["downloads"] == 1 and "monthly limit of 3" in source2["budget_exhausted"]
    assert second["clips_reused"] == 2 and second["clips_processed"] == 1  # resumed where the first stopped
    assert all(count == 1 for count in server.file_requests.values())  # no video downloaded twice
    assert set(server.file_requests) == {_file_path(v.id) for v in videos[:3]}
    report2 = (out / "report.md").read_text()
    assert "requests_spent: 1" in report2 and "'monthly_left': 0" in report2

    rows = _manifest(out)
    assert {cid: r["status"] for cid, r in rows.items()} == {f"pexels-{v.id}": "accepted" for v in videos[:3]}
    metas = _shard_metas(out)
    assert set(metas) == {r["key"] for r in rows.values()}
    today = dt.datetime.now(dt.timezone.utc).date()
    by_id = {v.id: (v, t) for v, t in zip(videos, types)}
    for meta in metas.values():
        attribution = meta["attribution"]
        spec, t = by_id[int(attribution["video_id"])]
        assert meta["clip_id"] == f"pexels-{spec.id}" and meta["license"] == LICENSE_NAME
        assert attribution["creator_name"] == spec.user_name
        assert attribution["creator_url"] == f"https://www.pexels.com/@creator-{spec.id}"
        assert attribution["page_url"] == f"https://www.pexels.com/video/{spec.slug}-{spec.id}/"
        assert attribution["license"] == LICENSE_NAME and attribution["license_url"] == LICENSE_URL
        assert abs((dt.date.fromisoformat(attribution["retrieved_at"]) - today).days) <= 1
        assert attribution["query"] == t.queries[0] and attribution["event_type"] == t.event_id


# -- 2 + 4: faults end in success or a recorded reason; the key is nowhere ----------------------------------------
@pytest.mark.slow
@pytest.mark.timeout(300)
def test_faults_end_in_success_or_a_reason_and_the_key_never_leaks(
        prefect_server: None, make_server: Make, pexels_url: Callable[[PexelsTestServer], None], tmp_path: Path,
        tax: Taxonomy, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]) -> None:
    caplog.set_level(logging.DEBUG)
    types = _types(tax, 6)
    videos = [_video(201 + i, t, clip) for i, (t, clip) in enumerate(zip(types, "abcdef"))]
    a, b, c, d, e, f = videos
    server = make_server(videos)
    pexels_url(server)
    # Searches run one type after another, so the nth /search request is known.
    server.add_fault(Fault("status", status=429), path="/search", nth=1)  # A: 429 without rate-limit headers
    server.add_fault(Fault("status", status=503), path="/search", nth=3)  # B: 5xx
    server.add_fault(Fault("delay", delay_s=6.0), path="/search", nth=5)  # C: slower than the request timeout
    server.add_fault(Fault("cut"), path=_file_path(a.id))  # A: truncated download, then a 5xx, then success
    server.add_fault(Fault("status", status=502), path=_file_path(a.id), nth=2)
    server.add_fault(Fault("trickle", delay_s=0.1), path=_file_path(b.id))  # B: a download slower than its deadline
    server.expire(c.id)  # C: the listing's link expired; videos/<id> gives a fresh one
    server.expire(d.id, refresh_works=False)  # D: expired for good
    server.add_fault(Fault("status", status=503), path=_file_path(e.id), times=None)  # E: the file host is down
    server.add_fault(Fault("cut"), path=_file_path(f.id), times=None)  # F: always truncated
    cfg = _config(tmp_path / "config.yaml", retries=3, request_timeout_s=2.0, download_timeout_s=3.0)
    out = tmp_path / "out"

    summary = _ingest(types, out, cfg)

    statuses = {status for _, status in server.log}
    assert {429, 503, 502, 403} <= statuses  # the faults really happened
    source = summary["source_stats"]
    assert source["per_type"] == {t.event_id: int(v in (a, b, c)) for t, v in zip(types, videos)}
    assert source["failures"] == {"http_503": 1, "link_expired": 1, "truncated": 1}
    # 6 searches, A-C retried once each, plus the refresh of C's and D's links
    assert server.api_requests == source["requests_spent"] == 6 + 3 + 2
    assert server.file_requests[_file_path(a.id)] == 3 and server.file_requests[_file_path(b.id)] == 2
    assert server.file_requests[_file_path(e.id)] == server.file_requests[_file_path(f.id)] == 4

    rows = _manifest(out)
    assert set(rows) == {f"pexels-{v.id}" for v in videos}
    for v in (a, b, c):
        assert rows[f"pexels-{v.id}"]["status"] == "accepted", rows[f"pexels-{v.id}"]
    for v, words in ((d, "expired, also after fetching a fresh link"), (e, "after 4 attempt(s): the file host "
                     "answered HTTP 503"), (f, "after 4 attempt(s): truncated")):
        row = rows[f"pexels-{v.id}"]
        assert row["status"] == "failed" and row["reason"] == "source_error", row
        assert words in row["error"], row
    assert len(_shard_metas(out)) == 3
    assert not list((out / "pexels" / "tmp").iterdir())  # no partial download left behind

    captured = capsys.readouterr()
    assert "Pexels request failed (http_429)" in caplog.text  # the logs were captured, retries included
    assert "Pexels download failed (truncated)" in caplog.text and "Pexels request failed (timeout)" in caplog.text
    _assert_key_absent(KEY, out, [caplog.text, captured.out, captured.err, json.dumps(summary)])
    assert KEY in server.seen_auth  # ... yet it was really sent (to the API), so the scan proves something


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_rerun_processes_a_video_whose_download_failed_before(prefect_server: None, make_server: Make,
                                                              pexels_url: Callable[[PexelsTestServer], None],
                                                              tmp_path: Path, tax: Taxonomy) -> None:
    (t,) = _types(tax, 1)
    video = _video(501, t, "a")
    server = make_server([video])
    pexels_url(server)
    server.add_fault(Fault("status", status=503), path=_file_path(video.id), times=3)  # every attempt of run 1
    cfg = _config(tmp_path / "config.yaml")
    out = tmp_path / "out"
    first = _ingest([t], out, cfg)
    assert first["status"] == {"failed": 1} and first["source_stats"]["failures"] == {"http_503": 1}
    second = _ingest([t], out, cfg)
    assert second["source_stats"]["downloads"] == 1 and server.file_requests[_file_path(video.id)] == 4
    assert second["clips_processed"] == 1 and second["status"] == {"accepted": 1}
    assert _manifest(out)[f"pexels-{video.id}"]["status"] == "accepted"


# -- 2 + 4: a rejected key fails fast, with a clear message that does not contain it -----------------------------
@pytest.mark.timeout(180)
def test_bad_key_fails_fast_without_showing_it(prefect_server: None, make_server: Make,
                                               pexels_url: Callable[[PexelsTestServer], None], tmp_path: Path,
                                               tax: Taxonomy, monkeypatch: pytest.MonkeyPatch,
                                               caplog: pytest.LogCaptureFixture,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    from remind_curate.cli import main

    caplog.set_level(logging.DEBUG)
    wrong = "pk-WRONG-d41c8e7a90b2f5e3"
    monkeypatch.setenv("PEXELS_API_KEY", wrong)
    types = _types(tax, 2)
    server = make_server([_video(301 + i, t, "ab"[i]) for i, t in enumerate(types)])
    pexels_url(server)
    cfg = _config(tmp_path / "config.yaml", retries=4, backoff_base_s=5.0, backoff_max_s=5.0)

    with pytest.raises(PexelsAuthError) as info:
        _ingest(types, tmp_path / "out", cfg)
    assert server.api_requests == 1 and not server.file_requests  # not retried, nothing else tried
    assert "rejected the API key" in str(info.value) and "PEXELS_API_KEY" in str(info.value)

    code = main(["ingest", "--source", f"pexels:{types[0].event_id}", "--out", str(tmp_path / "out-cli"),
                 "--config", str(cfg), "--pexels-permission-confirmed"])
    captured = capsys.readouterr()
    assert code != 0 and server.api_requests == 2
    assert "error: PexelsAuthError: Pexels rejected the API key (HTTP 401)" in captured.err
    assert "the key is not shown" in captured.err

    assert "rejected the API key" in caplog.text  # Prefect logged the failure: the scan below proves something
    texts = [caplog.text, captured.out, captured.err, *_exception_texts(info.value)]
    assert [t[:200] for t in texts if wrong in t] == []
    roots = [tmp_path, Path(os.environ["PREFECT_HOME"])]
    db_dir = _prefect_db_dir()
    if db_dir is not None and db_dir.is_dir():
        roots.append(db_dir)
    assert _files_containing(wrong, roots) == []


# -- 3: no permission, no request --------------------------------------------------------------------------------
@pytest.mark.timeout(180)
def test_ingest_refuses_without_permission(prefect_server: None, make_server: Make,
                                           pexels_url: Callable[[PexelsTestServer], None], tmp_path: Path,
                                           tax: Taxonomy, capsys: pytest.CaptureFixture[str]) -> None:
    from remind_curate.cli import main

    (t,) = _types(tax, 1)
    server = make_server([_video(401, t, "a")])
    pexels_url(server)
    cfg = _config(tmp_path / "config.yaml")

    with pytest.raises(PexelsPermissionError) as info:
        _ingest([t], tmp_path / "out", cfg, permission=False)
    text = str(info.value)
    assert "permission not confirmed" in text and "explicit permission" in text
    assert "--pexels-permission-confirmed" in text and "permission_confirmed: true" in text

    code = main(["ingest", "--source", f"pexels:{t.event_id}", "--out", str(tmp_path / "out-cli"),
                 "--config", str(cfg)])
    err = capsys.readouterr().err
    # The CLI refuses in its preflight, before any engine starts: one line, naming the flag that confirms it.
    assert code != 0 and "permission not confirmed" in err and "--pexels-permission-confirmed" in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert server.log == [] and server.api_requests == 0 and not server.file_requests  # no request was sent


# -- 6: the plan ---------------------------------------------------------------------------------------------------
@pytest.mark.timeout(60)
def test_cli_prints_the_pexels_plan(capsys: pytest.CaptureFixture[str]) -> None:
    from remind_curate.cli import main

    assert main(["plan-pexels", "--types", "container_filling,ball_rolling"]) == 0
    out = capsys.readouterr().out
    assert "Pexels retrieval plan: 2 event types" in out and "search requests: at most" in out
    lines = [line for line in out.splitlines() if "container_filling" in line or "ball_rolling" in line]
    assert len(lines) == 2 and "container_filling" in lines[0] and "ball_rolling" in lines[1]
    assert "pouring water into glass" in lines[0] and "ball rolling on floor" in lines[1]
