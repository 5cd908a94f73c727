"""PM-RoPE (ReMind Sec. 3.2): per-frame camera descriptors, the phase MLP h(c), and the extra rotation.

Descriptor layout (``DESCRIPTOR_DIM`` = 14 floats per latent frame), Eq. 1 ``c = [vec(R), t, log fx, log fy]``:

    [0:9]   vec(R): the camera-to-world rotation, row-major (R00, R01, R02, R10, ..., R22)
    [9:12]  t: the camera centre, translations centred and scaled per clip (schemas.cameras.normalise_translations)
    [12]    log(fx / W)
    [13]    log(fy / H)

Each latent frame takes the camera of the LAST video frame it encodes (latent 0 = frame 0, latent l = frame 4l).
A clip without known geometry gets a static camera at the origin with a 60 degree horizontal field of view.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from schemas.cameras import intrinsics_from_hfov, normalise_translations, normalised_intrinsics
from schemas.constants import LATENT_FRAMES, latent_frames

DESCRIPTOR_DIM = 14
DEFAULT_HFOV_DEG = 60.0


def latent_camera_frames() -> np.ndarray:
    """The video frame whose camera stands for each latent frame: the last frame it encodes."""
    return np.array([latent_frames(latent)[1] for latent in range(LATENT_FRAMES)])


def camera_descriptors(
    c2w: np.ndarray | None,
    intrinsics: np.ndarray | None,
    height: int,
    width: int,
    centre: np.ndarray | None = None,
    scale: float | None = None,
) -> np.ndarray:
    """(81,4,4) camera-to-world + (81,3,3) pixel intrinsics of a ``height`` x ``width`` frame -> (21, 14) float32.

    ``centre``/``scale`` reuse another clip's normalisation (the degraded clip shares the clean clip's world);
    by default the clip's own ``normalise_translations`` is used.
    """
    frames = latent_camera_frames()
    if c2w is None or intrinsics is None:
        K = np.broadcast_to(intrinsics_from_hfov(DEFAULT_HFOV_DEG, height, width), (len(frames), 3, 3))
        pose = np.broadcast_to(np.eye(4), (len(frames), 4, 4))
    else:
        if centre is None or scale is None:
            norm, _, _ = normalise_translations(c2w)
        else:
            norm = np.asarray(c2w, dtype=np.float64).copy()
            norm[:, :3, 3] = (norm[:, :3, 3] - centre) / scale
        pose, K = norm[frames], np.asarray(intrinsics, dtype=np.float64)[frames]
    focal = normalised_intrinsics(K, height, width)[:, :2]
    out = np.concatenate([pose[:, :3, :3].reshape(len(frames), 9), pose[:, :3, 3], np.log(focal)], axis=1)
    return out.astype(np.float32)


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
