"""Shared fixtures of the training tests: single-threaded torch (2 shared cores) and small real shards."""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from tests.training.shards import make_sample, write_shards


@pytest.fixture(autouse=True)
def single_thread_torch() -> Iterator[None]:
    """OpenMP spinning on 2 busy cores makes multi-threaded CPU kernels many times slower here."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="session")
def tiny_shards(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two shards of two samples: clips 0 and 2 with an occluder (degraded.mp4), 1 and 3 clean."""
    root = tmp_path_factory.mktemp("train-data")
    samples = [make_sample(0, True), make_sample(1, False, source="local", event_group="light"),
               make_sample(2, True), make_sample(3, False, source="local", event_group="light")]
    return write_shards(root / "shards", samples)
