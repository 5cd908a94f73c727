"""Shared fixtures: an isolated Prefect home and one Prefect test server per session; synthetic clips."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

_HOME = Path(tempfile.mkdtemp(prefix="remind-test-prefect-"))
os.environ["PREFECT_HOME"] = str(_HOME)
os.environ["PREFECT_RESULTS_LOCAL_STORAGE_PATH"] = str(_HOME / "results")
os.environ.setdefault("PREFECT_LOGGING_TO_API_ENABLED", "false")

from engine.runtime import configure_process  # noqa: E402

configure_process()


@pytest.fixture(scope="session")
def prefect_server():
    """A real, temporary Prefect API for tests that run flows (started once: 12-16 s on 2 cores)."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


@pytest.fixture(scope="session")
def synthetic_config():
    from schemas.config import SyntheticConfig

    return SyntheticConfig(seed=0)
