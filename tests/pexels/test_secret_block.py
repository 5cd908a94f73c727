"""The key can come from a Prefect Secret block (a real temporary Prefect server; slow)."""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tasks.sources.pexels import PexelsAuthError, PexelsClient
from tests.pexels.conftest import KEY, make_config, standard_videos
from tests.servers.pexels_server import PexelsTestServer

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]


def test_key_from_prefect_secret_block(make_server: Callable[..., PexelsTestServer], tmp_path: Path,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    from prefect.blocks.system import Secret
    from prefect.testing.utilities import prefect_test_harness

    import flows.secret_blocks  # noqa: F401 - the flows' floor teaches the sources to read Prefect Secret blocks

    monkeypatch.delenv("PEXELS_API_KEY")
    monkeypatch.setenv("PREFECT_SERVER_ANALYTICS_ENABLED", "false")  # tests reach 127.0.0.1 only
    monkeypatch.setenv("DO_NOT_TRACK", "1")
    server = make_server(standard_videos("cat", 1, 1))
    with prefect_test_harness(server_startup_timeout=120):
        Secret(value=KEY).save("remind-pexels-test-key", overwrite=True)
        with PexelsClient(make_config(server, secret_block="remind-pexels-test-key"), tmp_path) as client:
            assert client.search("cat")["total_results"] == 1
        with PexelsClient(make_config(server, secret_block="no-such-block"), tmp_path / "b") as client, \
                pytest.raises(PexelsAuthError, match="no-such-block"):
            client.search("dog")
    assert set(server.seen_auth) == {KEY} and server.api_requests == 1
