"""Checkpoints save and load in one place (training.checkpoint): resume and generate read the same weights."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import torch

from training.checkpoint import (REMIND_CONFIG, WEIGHTS_NAME, checkpoint_pm_rope, checkpoint_weights,
                                 load_checkpoint, save_checkpoint)
from training.config import load_train_config
from training.model.wan_causal import build_model, load_remind_transformer
from training.step import make_optimizer

REPO = Path(__file__).resolve().parents[2]
TINY = REPO / "configs" / "train-tiny.yaml"


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, torch.Tensor]]:
    cfg = load_train_config(TINY)
    model = build_model(cfg.model, torch.device("cpu"), seed=0)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if ".pm_" in name:  # zero-initialised: give the new keys values a wrong load would miss
                param.copy_(torch.randn_like(param))
    optimizer = make_optimizer(cfg.optim, list(model.parameters()))
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: 0.5)
    optimizer.step()
    scheduler.step()
    directory = tmp_path_factory.mktemp("ckpt")
    save_checkpoint(directory, model, optimizer, scheduler, 12, cfg)
    return directory, {k: v.detach().clone() for k, v in model.state_dict().items()}


def test_checkpoint_folder(saved: tuple[Path, dict[str, torch.Tensor]]) -> None:
    directory, _ = saved
    assert sorted(p.name for p in directory.iterdir()) == ["config.json", WEIGHTS_NAME, "optim.pt", REMIND_CONFIG,
                                                            "state.json"]
    assert checkpoint_weights(directory) == directory / WEIGHTS_NAME
    assert checkpoint_pm_rope(directory) == load_train_config(TINY).model.pm_rope
    assert json.loads((directory / "state.json").read_text()) == {"step": 12}


def test_resume_and_generate_load_the_same_weights(saved: tuple[Path, dict[str, torch.Tensor]]) -> None:
    directory, state = saved
    cfg = load_train_config(TINY)
    resumed = build_model(cfg.model, torch.device("cpu"), seed=99)
    optimizer = make_optimizer(cfg.optim, list(resumed.parameters()))
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: 0.5)
    assert load_checkpoint(directory, resumed, optimizer, scheduler) == 12
    assert scheduler.last_epoch == 1
    generated = load_remind_transformer(directory)
    for loaded in (resumed.state_dict(), generated.state_dict()):
        assert loaded.keys() == state.keys()
        assert all(torch.equal(loaded[k], state[k]) for k in state)


def test_older_weights_name_and_missing_weights(saved: tuple[Path, dict[str, torch.Tensor]], tmp_path: Path) -> None:
    directory, _ = saved
    for p in directory.iterdir():
        name = "model.safetensors" if p.name == WEIGHTS_NAME else p.name
        (tmp_path / name).write_bytes(p.read_bytes())
    assert checkpoint_weights(tmp_path) == tmp_path / "model.safetensors"
    model = build_model(load_train_config(TINY).model, torch.device("cpu"), seed=5)
    assert load_checkpoint(tmp_path, model) == 12
    (tmp_path / "model.safetensors").unlink()
    with pytest.raises(FileNotFoundError, match="no model weights"):
        checkpoint_weights(tmp_path)


def test_only_training_checkpoint_reads_weights() -> None:
    """One loader: no other training module calls safetensors' load_file."""
    readers = sorted(str(p.relative_to(REPO)) for p in (REPO / "training").rglob("*.py")
                     if re.search(r"\bload_file\(", p.read_text()))
    assert readers == ["training/checkpoint.py"]
