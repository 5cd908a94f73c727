"""Fixtures of the fault suite: the uninterrupted reference run every fault is compared with."""
from __future__ import annotations

import pytest

from tests.faults.helpers import uninterrupted_run


@pytest.fixture(scope="session")
def reference_out(prefect_server, tmp_path_factory):
    """OUT of a clean ingest of the same clips with the same config (see tests/faults/helpers.py)."""
    return uninterrupted_run(tmp_path_factory.getbasetemp())
