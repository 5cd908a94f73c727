"""The training loop in-process (no Ray): the loss falls, checkpoints round-trip, heatmaps are written."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
import webdataset as wds

from training.checkpoint import load_checkpoint
from training.config import load_train_config
from training.data import MixtureSampler, decode_latent_row, shard_paths
from training.encode import encode_shards, encode_text_cache
from training.heatmap import kv_importance
from training.loop import train_loop
from training.model.wan_causal import build_model

TINY = Path(__file__).resolve().parents[2] / "configs" / "train-tiny.yaml"


def _rows(shards: Path, cfg) -> MixtureSampler:
    latent_dir = encode_shards(shards, cfg, use_ray=False)
    rows = [decode_latent_row(raw) for path in shard_paths(latent_dir)
            for raw in wds.WebDataset(path, shardshuffle=False, empty_check=False)]
    return MixtureSampler(lambda: rows, cfg.data.mixture, seed=cfg.seed)


def test_loss_falls_and_checkpoint_restores(tiny_shards: Path, tmp_path: Path) -> None:
    cfg = load_train_config(TINY, {"max_steps": 80, "log_every": 1, "checkpoint_every": 40,
                                   "loss": {"delta_warmup_steps": 40}})
    reports: list[tuple[dict, list[str]]] = []

    def report(metrics: dict, directory: Path | None) -> None:
        reports.append((metrics, sorted(p.name for p in directory.iterdir()) if directory else []))
        if metrics["step"] == 40:
            (tmp_path / "ckpt").mkdir()
            for p in directory.iterdir():
                (tmp_path / "ckpt" / p.name).write_bytes(p.read_bytes())

    text_dir = encode_text_cache(tiny_shards, cfg, use_ray=False)
    last = train_loop(cfg, tmp_path, _rows(tiny_shards, cfg), torch.device("cpu"), report=report, text_dir=text_dir)
    records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == list(range(1, 81)) and last["step"] == 80
    assert {"step", "loss", "regime", "loss_flow", "loss_delta", "delta_weight"} <= set(records[0])
    assert {r["regime"] for r in records} == {"all_history", "noisy_memory", "node_drop", "v2v_frontier",
                                              "reference_cache"}
    losses = np.array([r["loss_flow"] for r in records])
    assert losses[-20:].mean() < 0.8 * losses[:20].mean()
    assert all(r["delta_weight"] == 0.0 for r in records[:40]) and all(r["delta_weight"] > 0 for r in records[40:])
    assert [m["step"] for m, _ in reports] == [40, 80]
    assert reports[0][1] == ["config.json", "diffusion_pytorch_model.safetensors", "optim.pt", "remind.json",
                             "state.json"]
    assert 0 < sum(r["text_dropped"] for r in records) < len(records)  # CFG dropout at text.cfg_dropout
    assert (tmp_path / "heatmaps" / "kv_importance_000080.png").stat().st_size > 0

    model = build_model(cfg.model, torch.device("cpu"), seed=123)
    assert load_checkpoint(tmp_path / "ckpt", model) == 40
    trained_new = [p for n, p in model.named_parameters() if ".pm_value." in n]
    assert any(p.abs().sum() > 0 for p in trained_new)  # the zero-initialised modules have learned


def test_kv_importance_rows_are_attention_distributions() -> None:
    cfg = load_train_config(TINY)
    model = build_model(cfg.model, torch.device("cpu"))
    gen = torch.Generator().manual_seed(0)
    x0 = torch.randn(1, 16, 21, 8, 14, generator=gen)
    mass = kv_importance(model, x0, torch.zeros(1, 21, 14), torch.zeros(1, 8, 32), layers=[0])
    assert mass.shape == (7, 7)
    np.testing.assert_allclose(mass.sum(axis=1), 1.0, atol=1e-5)
    assert np.all(np.triu(mass, k=1) == 0)
