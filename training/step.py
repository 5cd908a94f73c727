"""The pieces of one optimiser step that the loop and the GPU benchmark share: the optimiser, one sample's forward
and backward, and the step's metrics, kept on the device until the loop reads them (the only host sync)."""
from __future__ import annotations

from collections.abc import Iterable
from contextlib import AbstractContextManager

import torch
import torch.distributed as dist

from training.config import OptimConfig, TrainConfig
from training.curriculum import TrainInputs
from training.loss import LossParts, remind_loss
from training.model.wan_causal import CausalContext, remind_forward

METRICS = ("loss", "loss_flow", "loss_delta", "delta_weight", "delta_variance", "text_dropped", "text_missing",
           "grad_norm")


def make_optimizer(cfg: OptimConfig, params: Iterable[torch.nn.Parameter]) -> torch.optim.AdamW:
    return torch.optim.AdamW(params, lr=cfg.lr, betas=cfg.betas, weight_decay=cfg.weight_decay,
                             fused=True if cfg.fused else None)


def forward_backward(model: torch.nn.Module, inputs: TrainInputs, text: torch.Tensor, step: int, cfg: TrainConfig,
                     autocast: AbstractContextManager) -> LossParts:
    """Predict the velocity of the assembled slots, take the ReMind loss, backward its share of the step."""
    ctx = CausalContext(inputs.positions, inputs.slots, inputs.cameras)
    with autocast:
        pred = remind_forward(model, inputs.xt, inputs.sigmas * 1000.0, text, ctx)
    parts = remind_loss(pred.float(), inputs.xt, inputs.x0, inputs.noise, inputs.sigmas, inputs.loss_mask,
                        inputs.slots, step, cfg.loss)
    (parts.total / cfg.optim.grad_accum).backward()
    return parts


class StepMetrics:
    """One step's metrics as a float64 vector on the device (mean over the step's samples)."""

    def __init__(self, device: torch.device, samples: int) -> None:
        self.values = torch.zeros(len(METRICS), dtype=torch.float64, device=device)
        self.share = 1.0 / samples

    def add_sample(self, parts: LossParts, text_status: str) -> None:
        sample = torch.stack([parts.total.detach().double(), parts.flow.detach().double(),
                              parts.delta.detach().double(), parts.weight.double(), parts.delta_variance.double()])
        self.values[:5] += sample * self.share
        self.values[5] += (text_status == "dropped") * self.share
        self.values[6] += (text_status == "missing") * self.share

    def set_grad_norm(self, norm: torch.Tensor) -> None:
        if hasattr(norm, "full_tensor"):  # FSDP: a replicated DTensor
            norm = norm.full_tensor()
        self.values[7] = norm.detach().double()

    def finite(self) -> torch.Tensor:
        return torch.isfinite(self.values).all()

    def read(self) -> dict[str, float]:
        """Averaged over the workers (a collective: every rank calls it at the same step), then to the host."""
        values = self.values
        if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
            values = values.clone()
            dist.all_reduce(values)
            values = values / dist.get_world_size()
        return dict(zip(METRICS, values.tolist()))
