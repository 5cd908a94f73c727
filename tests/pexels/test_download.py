"""File choice and downloads into the content-addressed store, under faults."""
from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tasks.sources.pexels import PexelsClient
from tasks.sources.pexels.download import VideoStore, download_video, select_file
from tests.pexels.conftest import make_config, standard_videos
from tests.servers.pexels_server import Fault, PexelsTestServer, VideoSpec

pytestmark = pytest.mark.timeout(60)

Make = Callable[..., PexelsTestServer]


def _video(client: PexelsClient, video_id: int) -> dict[str, Any]:
    return client.video(video_id, use_cache=True)


def _setup(make_server: Make, tmp_path: Path, videos: list[VideoSpec],
           **overrides: Any) -> tuple[PexelsTestServer, PexelsClient, VideoStore]:
    server = make_server(videos)
    client = PexelsClient(make_config(server, **overrides), tmp_path)
    return server, client, VideoStore(tmp_path)


def _hd_path(server: PexelsTestServer, video_id: int) -> str:
    return f"/files/{video_id * 10 + 2}.mp4"


def test_select_file_picks_the_smallest_suitable(make_server: Make, tmp_path: Path) -> None:
    specs = [VideoSpec(1, "a"), VideoSpec(2, "b", layout="portrait"), VideoSpec(3, "c", layout="small"),
             VideoSpec(4, "d", layout="lowfps"), VideoSpec(5, "e", layout="nullfps"), VideoSpec(6, "f", duration=3)]
    server, client, _ = _setup(make_server, tmp_path, specs)
    config = client.config
    chosen = {s.id: select_file(_video(client, s.id), config) for s in specs}
    assert chosen[1][0] is not None and (chosen[1][0]["width"], chosen[1][0]["height"]) == (864, 480)
    assert chosen[2] == (None, "no_suitable_file")
    assert chosen[3] == (None, "no_suitable_file")
    assert chosen[4] == (None, "no_suitable_file")
    assert chosen[5][0] is not None and chosen[5][0]["fps"] is None  # unknown fps is accepted
    assert chosen[6] == (None, "too_short")
    big = select_file(_video(client, 1), config.model_copy(update={"min_width": 1280}))[0]
    assert big is not None and big["width"] == 1920


def test_download_publishes_a_verified_content_addressed_file(make_server: Make, tmp_path: Path,
                                                              library: dict[str, Path]) -> None:
    server, client, store = _setup(make_server, tmp_path, [VideoSpec(7, "x", clip="c")])
    result = download_video(client, store, _video(client, 7))
    sha = hashlib.sha256(library["c"].read_bytes()).hexdigest()
    assert result.status == "downloaded" and result.sha256 == sha
    assert result.path == tmp_path / "videos" / sha[:2] / f"{sha}.mp4" and result.path.read_bytes()
    assert result.file is not None and result.file["file_id"] == 72 and "link" not in result.file
    assert set(server.seen_auth[1:]) == {None}  # the key is never sent to the file host
    assert not list(store.tmp_dir.iterdir())


def test_rerun_and_duplicates_are_not_downloaded_twice(make_server: Make, tmp_path: Path) -> None:
    specs = [VideoSpec(1, "x", clip="a"), VideoSpec(2, "y", clip="a")]  # same content under two ids
    server, client, store = _setup(make_server, tmp_path, specs)
    first = download_video(client, store, _video(client, 1))
    again = download_video(client, store, _video(client, 1))
    twin = download_video(client, store, _video(client, 2))
    assert (first.status, again.status, twin.status) == ("downloaded", "reused", "duplicate")
    assert again.path == first.path == twin.path and twin.duplicate_of == "1"
    twin_again = download_video(client, store, _video(client, 2))  # a rerun still knows it is a duplicate
    assert twin_again.status == "duplicate" and twin_again.duplicate_of == "1"
    assert server.file_requests[_hd_path(server, 1)] == 1
    assert len(list((tmp_path / "videos").rglob("*.mp4"))) == 1


@pytest.mark.parametrize("kind", ["cut", "short_length"])
def test_truncated_download_is_retried(make_server: Make, tmp_path: Path, kind: str) -> None:
    server, client, store = _setup(make_server, tmp_path, [VideoSpec(3, "x", clip="b")])
    server.add_fault(Fault(kind), path="/files/")
    result = download_video(client, store, _video(client, 3))
    assert result.status == "downloaded"
    assert server.file_requests[_hd_path(server, 3)] == 2


@pytest.mark.parametrize(("kind", "code"), [("cut", "truncated"), ("short_length", "corrupt")])
def test_truncated_download_fails_and_is_never_published(make_server: Make, tmp_path: Path, kind: str,
                                                         code: str) -> None:
    server, client, store = _setup(make_server, tmp_path, [VideoSpec(3, "x", clip="b")], retries=2)
    server.add_fault(Fault(kind), path="/files/", times=None)
    result = download_video(client, store, _video(client, 3))
    assert result.status == "failed" and result.reason_code == code
    assert result.reason and "after 3 attempt(s)" in result.reason
    assert server.file_requests[_hd_path(server, 3)] == 3
    assert not (tmp_path / "videos").exists() and not list(store.tmp_dir.iterdir())
    assert store.lookup(3) is None


def test_expired_link_is_refreshed(make_server: Make, tmp_path: Path) -> None:
    server, client, store = _setup(make_server, tmp_path, [VideoSpec(4, "x", clip="d")])
    listing = client.search("x")["videos"][0]
    server.expire(4)
    before = server.api_requests
    result = download_video(client, store, listing)
    assert result.status == "downloaded"
    assert server.api_requests == before + 1  # one videos/<id> refetch
    assert [status for path, status in server.log if path.startswith("/files/")] == [403, 200]


def test_expired_link_fails_with_reason_when_refresh_does_not_help(make_server: Make, tmp_path: Path) -> None:
    server, client, store = _setup(make_server, tmp_path, [VideoSpec(4, "x", clip="d")])
    listing = client.search("x")["videos"][0]
    server.expire(4, refresh_works=False)
    result = download_video(client, store, listing)
    assert result.status == "failed" and result.reason_code == "link_expired"
    assert result.reason and "also after fetching a fresh link" in result.reason
    assert server.file_requests[_hd_path(server, 4)] == 2


def test_expired_link_without_budget_for_refresh(make_server: Make, tmp_path: Path) -> None:
    server, client, store = _setup(make_server, tmp_path, [VideoSpec(4, "x", clip="d")], max_requests=1)
    listing = client.search("x")["videos"][0]
    server.expire(4)
    result = download_video(client, store, listing)
    assert result.status == "failed" and result.reason and "run cap" in result.reason


def test_stalled_download_times_out_with_reason(make_server: Make, tmp_path: Path) -> None:
    server, client, store = _setup(make_server, tmp_path, [VideoSpec(5, "x", clip="e")], retries=1,
                                   request_timeout_s=0.3)
    server.add_fault(Fault("stall", delay_s=20.0), path="/files/", times=None)
    start = time.monotonic()
    result = download_video(client, store, _video(client, 5))
    assert time.monotonic() - start < 5
    assert result.status == "failed" and result.reason_code == "timeout"
    assert not (tmp_path / "videos").exists()


def test_slow_download_hits_the_overall_deadline(make_server: Make, tmp_path: Path) -> None:
    server, client, store = _setup(make_server, tmp_path, [VideoSpec(5, "x", clip="e")], retries=0,
                                   request_timeout_s=1.0, download_timeout_s=0.5)
    server.add_fault(Fault("trickle", delay_s=0.1), path="/files/")  # every read is quick, the whole is not
    start = time.monotonic()
    result = download_video(client, store, _video(client, 5))
    assert time.monotonic() - start < 1.2
    assert result.status == "failed" and result.reason_code == "timeout"
    assert result.reason and "longer than 0.5 s" in result.reason


def test_oversized_file_is_refused(make_server: Make, tmp_path: Path) -> None:
    server, client, store = _setup(make_server, tmp_path, [VideoSpec(6, "x")], max_download_bytes=1000)
    result = download_video(client, store, _video(client, 6))
    assert result.status == "failed" and result.reason_code == "too_large"
    assert server.file_requests[_hd_path(server, 6)] == 1  # permanent: not retried


def test_server_errors_on_files_are_retried(make_server: Make, tmp_path: Path) -> None:
    server, client, store = _setup(make_server, tmp_path, standard_videos("x", 8, 1))
    server.add_fault(Fault("status", status=503), path="/files/")
    assert download_video(client, store, _video(client, 8)).status == "downloaded"
