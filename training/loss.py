"""Flow matching and the dynamic temporal-delta loss (ReMind Sec. 3.4, Appendix B).

x_t = (1 - s) x0 + s eps, the model predicts u = eps - x0, so x0_hat = x_t - s u_hat. With frames indexed i
inside a chunk, L_delta = mean || (x0_hat_i - x0_hat_{i-1}) - (x0_i - x0_{i-1}) ||^2 over supervised pairs, and
lambda = alpha exp(-gamma Var(dx0)), Var over every element of the ground-truth deltas of the batch on all ranks
(population variance), a constant for the gradient. Norms are means over elements, like the MSE of the flow term.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from training.config import LossConfig
from training.distributed import all_reduce_sum


@dataclass
class LossParts:
    """Every part a tensor on the loss's device: the step reads none of them back to the host."""

    total: torch.Tensor
    flow: torch.Tensor
    delta: torch.Tensor
    weight: torch.Tensor  # lambda_adapt actually applied (0 during warm-up)
    delta_variance: torch.Tensor


def _frame_mask(mask: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """(B, F) bool -> float broadcastable to (B, C, F, H, W)."""
    return mask[:, None, :, None, None].to(like.dtype).expand_as(like)


def flow_matching_loss(pred: torch.Tensor, x0: torch.Tensor, noise: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean squared error to u = eps - x0 over the supervised frames."""
    weights = _frame_mask(mask, pred)
    return ((pred.float() - (noise - x0).float()) ** 2 * weights).sum() / weights.sum().clamp(min=1)


def predicted_x0(xt: torch.Tensor, pred: torch.Tensor, sigmas: torch.Tensor) -> torch.Tensor:
    return xt - sigmas[:, None, :, None, None] * pred


def delta_pairs(mask: torch.Tensor, slots: torch.Tensor) -> torch.Tensor:
    """(B, F-1) bool: frames i-1 and i are both supervised and in the same chunk slot."""
    same_chunk = (slots[1:] == slots[:-1]).to(mask.device)
    return mask[:, 1:] & mask[:, :-1] & same_chunk[None]


def temporal_delta_loss(x0_hat: torch.Tensor, x0: torch.Tensor,
                        pairs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(L_delta, Var(dx0)) over the frame pairs selected by ``pairs`` (B, F-1); both 0 when no pair is selected.

    Var(dx0) is over the whole batch across ranks (Appendix B): every rank's count, sum and sum of squares of the
    selected ground-truth deltas are summed over the process group before the variance is taken. Computed on the
    device (float64), without reading anything back to the host.
    """
    d_hat = (x0_hat[:, :, 1:] - x0_hat[:, :, :-1]).float()
    d_true = (x0[:, :, 1:] - x0[:, :, :-1]).float()
    weights = _frame_mask(pairs, d_true)
    moments = torch.stack([weights.sum(), (d_true * weights).sum(), (d_true ** 2 * weights).sum()]).double()
    count, total, squares = all_reduce_sum(moments.detach()).unbind()  # a collective: every rank calls it
    loss = ((d_hat - d_true) ** 2 * weights).sum() / weights.sum().clamp(min=1)
    mean = total / count.clamp(min=1)
    variance = (squares / count.clamp(min=1) - mean * mean).clamp(min=0.0)
    return loss, variance


def adaptive_weight(variance: float, alpha: float, gamma: float) -> float:
    """lambda_adapt = alpha * exp(-gamma * Var(dx0))."""
    return float(alpha * torch.exp(torch.tensor(-gamma * variance, dtype=torch.float64)))


def remind_loss(pred: torch.Tensor, xt: torch.Tensor, x0: torch.Tensor, noise: torch.Tensor, sigmas: torch.Tensor,
                mask: torch.Tensor, slots: torch.Tensor, step: int, cfg: LossConfig) -> LossParts:
    """L = L_flow + lambda_adapt L_delta, the delta term only from step ``cfg.delta_warmup_steps`` on."""
    flow = flow_matching_loss(pred, x0, noise, mask)
    delta, variance = temporal_delta_loss(predicted_x0(xt, pred, sigmas), x0, delta_pairs(mask, slots))
    weight = cfg.alpha * torch.exp(-cfg.gamma * variance) if step >= cfg.delta_warmup_steps else variance * 0.0
    return LossParts(total=flow + weight.to(delta.dtype) * delta, flow=flow, delta=delta, weight=weight,
                     delta_variance=variance)
