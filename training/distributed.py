"""Data parallelism for the training loop: DDP (replicated) or FSDP (torch's ``fully_shard``: parameters, grads and
optimiser state sharded per block), plus the full state dicts a checkpoint needs under either.

Without an initialised process group of more than one rank the model is used as is. FSDP shards every
``WanTransformerBlock`` and then the root module; the optimiser must be built after ``wrap`` (its parameters
become DTensors). ``full_model_state`` / ``full_optimizer_state`` are collectives: every rank calls them.
"""
from __future__ import annotations

from typing import Any

import torch
import torch.distributed as dist


def world_size() -> int:
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def wrap(model: torch.nn.Module, strategy: str, device: torch.device) -> torch.nn.Module:
    """The module the loop calls: ``model`` itself (one rank or FSDP, sharded in place) or a DDP wrapper."""
    if strategy == "fsdp" and dist.is_available() and dist.is_initialized():
        from torch.distributed.fsdp import fully_shard

        for block in model.blocks:
            fully_shard(block)
        fully_shard(model)
        return model
    if world_size() > 1:
        return torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None)
    return model


def is_sharded(model: torch.nn.Module) -> bool:
    return any(type(p).__name__ == "DTensor" for p in model.parameters())


def full_model_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The whole (unsharded) state dict on CPU."""
    inner = getattr(model, "module", model)
    if not is_sharded(inner):
        return {k: v.detach().contiguous() for k, v in inner.state_dict().items()}
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

    return get_model_state_dict(inner, options=StateDictOptions(full_state_dict=True, cpu_offload=True))


def full_optimizer_state(model: torch.nn.Module, optimizer: torch.optim.Optimizer) -> dict[str, Any]:
    inner = getattr(model, "module", model)
    if not is_sharded(inner):
        return optimizer.state_dict()
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_optimizer_state_dict

    return get_optimizer_state_dict(inner, optimizer, options=StateDictOptions(full_state_dict=True,
                                                                               cpu_offload=True))


def load_model_state(model: torch.nn.Module, state: dict[str, torch.Tensor]) -> None:
    """Load a full (unsharded) state dict strictly, into a plain, DDP-wrapped or FSDP-sharded model."""
    inner = getattr(model, "module", model)
    if not is_sharded(inner):
        inner.load_state_dict(state)
        return
    from torch.distributed.checkpoint.state_dict import StateDictOptions, set_model_state_dict

    set_model_state_dict(inner, state, options=StateDictOptions(full_state_dict=True))


def load_optimizer_state(model: torch.nn.Module, optimizer: torch.optim.Optimizer, state: dict[str, Any]) -> None:
    inner = getattr(model, "module", model)
    if not is_sharded(inner):
        optimizer.load_state_dict(state)
        return
    from torch.distributed.checkpoint.state_dict import StateDictOptions, set_optimizer_state_dict

    set_optimizer_state_dict(inner, optimizer, state, options=StateDictOptions(full_state_dict=True))


def all_reduce_sum(values: torch.Tensor) -> torch.Tensor:
    """Sum over ranks (float64 on the values' device); the values themselves with one rank."""
    if world_size() > 1:
        values = values.clone()
        dist.all_reduce(values)
    return values
