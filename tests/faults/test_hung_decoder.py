"""A decoder that never returns (a FIFO named .mp4 in a local source folder): that input fails with a timeout
reason within normalise.decode_timeout_s, and the run goes on and completes."""
from __future__ import annotations

import os
import threading

import pytest

from tasks.publish.manifest import read_manifest
from tests.faults.helpers import BACKENDS, RAY_CONFIG
from tests.media import scene_frames, write_video

pytestmark = [pytest.mark.slow, pytest.mark.faults, pytest.mark.timeout(300)]


def _unblock(fifo) -> None:
    """Give a reader stuck opening the FIFO a writer (then EOF), so no thread stays blocked after the test."""
    for _ in range(3):
        try:
            os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        except OSError:  # ENXIO: nobody is reading it (any more)
            return


@pytest.mark.parametrize("backend", BACKENDS)
def test_hung_decoder_times_out_and_the_run_goes_on(prefect_server, tmp_path, backend):
    from flows.ingest import ingest
    from tasks.sources.local import local_items

    videos = tmp_path / "videos"
    videos.mkdir()
    write_video(videos / "short.mp4", scene_frames(30, seed=7), fps=16)  # decodes fine, rejected: too short
    fifo = videos / "stuck.mp4"
    os.mkfifo(fifo)
    try:
        listing: list = []
        lister = threading.Thread(target=lambda: listing.append(local_items(str(videos))), daemon=True)
        lister.start()
        lister.join(10)
        if lister.is_alive():
            pytest.fail("listing a local folder blocked on a FIFO "
                        "(tasks/sources/local.py must not read non-regular files)")
        config = tmp_path / "config.yaml"
        config.write_text("normalise:\n  decode_timeout_s: 8\n" + (RAY_CONFIG if backend == "ray" else ""))

        summary = ingest(source=f"local:{videos}", out=str(tmp_path / "out"), config_path=str(config))
    finally:
        _unblock(fifo)

    rows = {r.uri.rsplit("/", 1)[-1]: r for r in read_manifest(tmp_path / "out" / "manifest.parquet")}
    assert set(rows) == {"short.mp4", "stuck.mp4"}
    stuck = rows["stuck.mp4"]
    assert (stuck.status, stuck.reason) == ("failed", "decode_timeout"), stuck
    assert "did not finish within 8 s" in (stuck.error or ""), stuck.error
    assert (rows["short.mp4"].status, rows["short.mp4"].reason) == ("rejected", "too_short")
    assert summary["inputs"] == 2 and summary["clips_processed"] == 2
