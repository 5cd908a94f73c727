"""Across ranks: Var(dx0) of the adaptive weight pools the whole batch (2 gloo ranks), and FSDP trains, gathers a
full checkpoint and restores it (1 gloo rank on CPU)."""
from __future__ import annotations

import os
import socket
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from training.loss import temporal_delta_loss

TINY = Path(__file__).resolve().parents[2] / "configs" / "train-tiny.yaml"


def _port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _deltas(rank: int) -> torch.Tensor:
    return torch.randn(1, 2, 3, 2, 2, generator=torch.Generator().manual_seed(rank)) * (1 + 2 * rank)


def _rank(rank: int, port: int, results: dict) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=2)
    try:
        x0 = _deltas(rank)
        pairs = torch.ones(1, 2, dtype=torch.bool)
        results[rank] = temporal_delta_loss(x0.clone(), x0, pairs)[1]
    finally:
        dist.destroy_process_group()


@pytest.mark.timeout(120)
def test_delta_variance_is_over_the_batch_of_all_ranks() -> None:
    with mp.Manager() as manager:
        results = manager.dict()
        mp.start_processes(_rank, args=(_port(), results), nprocs=2, join=True, start_method="spawn")
        got = dict(results)
    pooled = np.concatenate([(x[:, :, 1:] - x[:, :, :-1]).flatten().numpy() for x in map(_deltas, range(2))])
    assert got[0] == pytest.approx(float(pooled.var()), rel=1e-6) and got[0] == got[1]
    local = (_deltas(0)[:, :, 1:] - _deltas(0)[:, :, :-1]).var(unbiased=False).item()
    assert abs(got[0] - local) > 0.1  # not the rank's own variance


@pytest.mark.timeout(180)
def test_fsdp_trains_and_checkpoints(tiny_shards: Path, tmp_path: Path) -> None:
    from tests.training.test_loop import _rows
    from training.config import load_train_config
    from training.encode import encode_text_cache
    from training.loop import train_loop
    from training.model.wan_causal import load_remind_transformer

    cfg = load_train_config(TINY, {"max_steps": 3, "checkpoint_every": 3, "ray": {"strategy": "fsdp"}})
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(_port()))
    dist.init_process_group("gloo", rank=0, world_size=1)
    saved: list[Path] = []

    def report(metrics: dict, directory: Path | None) -> None:
        assert directory is not None
        (tmp_path / "ckpt").mkdir()
        for p in directory.iterdir():
            (tmp_path / "ckpt" / p.name).write_bytes(p.read_bytes())
        saved.append(tmp_path / "ckpt")

    try:
        last = train_loop(cfg, tmp_path, _rows(tiny_shards, cfg), torch.device("cpu"), report=report,
                          text_dir=encode_text_cache(tiny_shards, cfg, use_ray=False))
    finally:
        dist.destroy_process_group()
    assert last["step"] == 3 and np.isfinite(last["loss"]) and saved
    model = load_remind_transformer(saved[0])  # a plain (unsharded) model through from_pretrained
    assert any(".pm_value." in n and p.abs().sum() > 0 for n, p in model.named_parameters())
