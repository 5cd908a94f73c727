"""Fixtures that run the real ingest flow once per session and share its output (read-only)."""
from __future__ import annotations

from pathlib import Path

import pytest

from tests.media import mixed_folder


@pytest.fixture(scope="session")
def mixed_videos(tmp_path_factory) -> tuple[Path, dict[str, str]]:
    root = tmp_path_factory.mktemp("mixed")
    return root, mixed_folder(root)


@pytest.fixture(scope="session")
def local_run(prefect_server, mixed_videos, tmp_path_factory):
    """`remind-curate ingest --source local:DIR` over the mixed folder, as a new user would run it."""
    from remind_curate.cli import main

    root, expected = mixed_videos
    out = tmp_path_factory.mktemp("local-run") / "out"
    code = main(["ingest", "--source", f"local:{root}", "--out", str(out)])
    return out, expected, code


@pytest.fixture(scope="session")
def synthetic_run(prefect_server, tmp_path_factory):
    from flows.ingest import ingest

    out = tmp_path_factory.mktemp("synthetic-run") / "out"
    summary = ingest(source="synthetic:6", out=str(out))
    return out, summary
