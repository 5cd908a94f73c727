"""Training checkpoints, saved and loaded in one place.

A checkpoint folder is a diffusers folder (``config.json`` + ``diffusion_pytorch_model.safetensors``, with the
PM-RoPE ``pm_*`` keys beside the stock ones) plus ``remind.json`` (the PM-RoPE config and step), ``optim.pt`` (the
optimiser and scheduler state) and ``state.json`` (the step). ``save_checkpoint`` writes it; ``load_checkpoint`` is
the one reader of its weights: the training loop's resume (weights, optimiser, scheduler) and
``training.model.wan_causal.load_remind_transformer`` (the weights into a freshly built model, for generate) both
call it.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from training.config import PMRoPEConfig, TrainConfig
from training.distributed import (full_model_state, full_optimizer_state, is_sharded, load_model_state,
                                  load_optimizer_state)

WEIGHTS_NAME = "diffusion_pytorch_model.safetensors"  # diffusers' file name: from_pretrained finds it
REMIND_CONFIG = "remind.json"  # the PM-RoPE config of a checkpoint


def save_checkpoint(directory: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
                    scheduler: Any, step: int, cfg: TrainConfig, write: bool = True) -> None:
    """The checkpoint folder of ``model`` at ``step``. Every rank calls it (gathering FSDP shards is a collective);
    only ``write`` ranks write."""
    state = full_model_state(model)
    optim_state = full_optimizer_state(model, optimizer)
    if not write:
        return
    inner = getattr(model, "module", model)
    inner.save_config(str(directory))
    save_file({k: v.contiguous().cpu() for k, v in state.items()}, str(directory / WEIGHTS_NAME))
    (directory / REMIND_CONFIG).write_text(json.dumps({"pm_rope": cfg.model.pm_rope.model_dump(mode="json"),
                                                       "step": step}))
    torch.save({"optimizer": optim_state, "scheduler": scheduler.state_dict()}, directory / "optim.pt")
    (directory / "state.json").write_text(json.dumps({"step": step}))


def checkpoint_weights(directory: Path) -> Path:
    """The weights file of a checkpoint folder (the diffusers name; ``model.safetensors`` in older runs)."""
    for name in (WEIGHTS_NAME, "model.safetensors"):
        if (Path(directory) / name).exists():
            return Path(directory) / name
    raise FileNotFoundError(f"no model weights in {directory}")


def checkpoint_pm_rope(directory: Path) -> PMRoPEConfig:
    """The PM-RoPE config a checkpoint was trained with (its ``remind.json``)."""
    return PMRoPEConfig.model_validate(json.loads((Path(directory) / REMIND_CONFIG).read_text())["pm_rope"])


def load_checkpoint(directory: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer | None = None,
                    scheduler: Any = None) -> int:
    """Restore a checkpoint in place: the weights always, strictly (into a plain, DDP or FSDP-sharded model), the
    optimiser and scheduler state when they are given. Returns the number of steps already taken."""
    directory = Path(directory)
    device = "cpu" if is_sharded(getattr(model, "module", model)) else str(next(model.parameters()).device)
    load_model_state(model, load_file(str(checkpoint_weights(directory)), device=device))
    if optimizer is not None:
        state = torch.load(directory / "optim.pt", weights_only=True, map_location="cpu")
        load_optimizer_state(model, optimizer, state["optimizer"])
        if scheduler is not None:
            scheduler.load_state_dict(state["scheduler"])
    return int(json.loads((directory / "state.json").read_text())["step"])
