"""Flow matching and the dynamic temporal-delta loss against hand computations (Sec. 3.4, Appendix B)."""
from __future__ import annotations

import math

import pytest
import torch

from training.config import LossConfig
from training.loss import (
    adaptive_weight, delta_pairs, flow_matching_loss, predicted_x0, remind_loss, temporal_delta_loss)


def _video(values: list[float]) -> torch.Tensor:
    """(1, 1, F, 1, 1) from one value per frame."""
    return torch.tensor(values, dtype=torch.float64)[None, None, :, None, None]


def test_flow_matching_loss_by_hand() -> None:
    x0, noise = _video([1.0, 2.0, 3.0]), _video([0.5, 0.0, -1.0])
    pred = _video([0.0, 0.0, 0.0])  # targets eps - x0 = [-0.5, -2, -4]
    mask = torch.tensor([[True, False, True]])
    assert flow_matching_loss(pred, x0, noise, mask).item() == pytest.approx((0.25 + 16.0) / 2)


def test_predicted_x0_inverts_the_noising() -> None:
    x0, noise, sigmas = _video([1.0, -2.0]), _video([0.3, 0.7]), torch.tensor([[0.25, 0.9]], dtype=torch.float64)
    xt = (1 - sigmas[:, None, :, None, None]) * x0 + sigmas[:, None, :, None, None] * noise
    torch.testing.assert_close(predicted_x0(xt, noise - x0, sigmas), x0)


def test_delta_pairs_stay_inside_supervised_chunks() -> None:
    mask = torch.tensor([[False, False, False, True, True, True]])
    slots = torch.tensor([0, 0, 0, 1, 1, 1])
    assert delta_pairs(mask, slots).tolist() == [[False, False, False, True, True]]


def test_temporal_delta_loss_and_variance_by_hand() -> None:
    x0 = _video([0.0, 1.0, 3.0, 10.0, 10.0, 12.0])
    x0_hat = _video([0.0, 2.0, 3.0, 10.0, 11.0, 11.0])
    pairs = torch.tensor([[True, True, False, True, True]])  # the pair across the chunk border is excluded
    loss, variance = temporal_delta_loss(x0_hat, x0, pairs)
    # true deltas 1, 2 | 0, 2; predicted 2, 1 | 1, 0 -> squared errors 1, 1, 1, 4
    assert loss.item() == pytest.approx(7 / 4)
    assert variance == pytest.approx(sum((d - 1.25) ** 2 for d in (1, 2, 0, 2)) / 4)


def test_adaptive_weight_by_hand() -> None:
    assert adaptive_weight(0.0, 0.2, 5.0) == pytest.approx(0.2)
    assert adaptive_weight(0.3, 0.2, 5.0) == pytest.approx(0.2 * math.exp(-1.5))
    assert adaptive_weight(10.0, 0.2, 5.0) < 1e-20  # a fast pan switches the delta loss off


def test_remind_loss_enables_the_delta_term_after_warmup() -> None:
    gen = torch.Generator().manual_seed(0)
    x0, noise, pred = (torch.randn(1, 2, 6, 2, 2, generator=gen) for _ in range(3))
    sigmas = torch.full((1, 6), 0.5)
    xt = 0.5 * x0 + 0.5 * noise
    mask = torch.tensor([[False, False, False, True, True, True]])
    slots = torch.tensor([0, 0, 0, 1, 1, 1])
    cfg = LossConfig(delta_warmup_steps=10)
    before = remind_loss(pred, xt, x0, noise, sigmas, mask, slots, step=9, cfg=cfg)
    after = remind_loss(pred, xt, x0, noise, sigmas, mask, slots, step=10, cfg=cfg)
    assert before.weight == 0.0 and torch.equal(before.total, before.flow)
    expected_weight = 0.2 * math.exp(-5.0 * after.delta_variance)
    assert after.weight == pytest.approx(expected_weight)
    assert after.total.item() == pytest.approx(after.flow.item() + expected_weight * after.delta.item(), rel=1e-6)
    assert LossConfig().alpha == 0.2 and LossConfig().gamma == 5.0 and LossConfig().delta_warmup_steps == 2000
