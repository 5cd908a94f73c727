"""PM-RoPE modules (ReMind Sec. 3.2): the phase MLP h(c), the camera residuals, and the extra rotation.

The per-frame descriptors they read are built by ``training.cameras`` (layout documented there).
"""
from __future__ import annotations

import torch
from torch import nn

from training.cameras import DESCRIPTOR_DIM


class PhaseMLP(nn.Module):
    """h(c): descriptor -> one rotary phase offset per head and rotation pair. The last layer starts at zero."""

    def __init__(self, heads: int, head_dim: int, hidden: int) -> None:
        super().__init__()
        self.heads, self.pairs = heads, head_dim // 2
        self.net = nn.Sequential(nn.Linear(DESCRIPTOR_DIM, hidden), nn.SiLU(), nn.Linear(hidden, heads * self.pairs))
        nn.init.zeros_(self.net[2].weight)
        nn.init.zeros_(self.net[2].bias)

    def forward(self, descriptors: torch.Tensor) -> torch.Tensor:
        """(B, F, 14) -> (B, F, heads, head_dim // 2) phase offsets in radians."""
        return self.net(descriptors).unflatten(-1, (self.heads, self.pairs))


class CameraResidual(nn.Module):
    """Zero-initialised linear map of [features, camera descriptor] (W_dV and W_dO of Eq. 3)."""

    def __init__(self, in_features: int, out_features: int) -> None:
        super().__init__()
        self.proj = nn.Linear(in_features + DESCRIPTOR_DIM, out_features)
        nn.init.zeros_(self.proj.weight)
        nn.init.zeros_(self.proj.bias)

    def forward(self, features: torch.Tensor, cameras: torch.Tensor) -> torch.Tensor:
        cameras = cameras.to(features.dtype).expand(*features.shape[:-1], -1)
        return self.proj(torch.cat([features, cameras], dim=-1))


def rotate_pairs(x: torch.Tensor, phase: torch.Tensor) -> torch.Tensor:
    """Rotate interleaved pairs (x[2i], x[2i+1]) of (B, L, H, D) by ``phase`` (B, L, H, D/2).

    Applied after the stock RoPE rotation, R(delta) R(theta) = R(theta + delta): Eq. 2's phase offset. With a zero
    phase the result is bitwise the input (cos 0 = 1, sin 0 = 0).
    """
    work = torch.promote_types(x.dtype, torch.float32)
    x1, x2 = x.to(work).unflatten(-1, (-1, 2)).unbind(-1)
    cos, sin = phase.to(work).cos(), phase.to(work).sin()
    return torch.stack([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1).flatten(-2).type_as(x)
