"""Pixel metrics of the recovered suffix against the clean clip: PSNR and SSIM (scikit-image), LPIPS only where
its backbone weights exist on the host (``protocol.lpips_weights``); otherwise it is reported as unavailable."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from skimage.metrics import peak_signal_noise_ratio, structural_similarity


def suffix_metrics(video: np.ndarray, clean: np.ndarray, start: int) -> dict[str, float]:
    """Mean over frames ``start..`` of PSNR (dB, data range 255) and SSIM (RGB, channel axis last)."""
    count = min(len(video), len(clean))
    if start >= count:
        raise ValueError(f"no suffix frame: start {start} of {count}")
    if video.shape[1:] != clean.shape[1:]:
        raise ValueError(f"frame sizes differ: {video.shape[1:]} vs {clean.shape[1:]}")
    psnr, ssim = [], []
    for a, b in zip(video[start:count], clean[start:count]):
        psnr.append(min(peak_signal_noise_ratio(b, a, data_range=255), 100.0))  # identical frames: capped
        ssim.append(structural_similarity(b, a, channel_axis=-1, data_range=255))
    return {"psnr": float(np.mean(psnr)), "ssim": float(np.mean(ssim)), "suffix_frames": count - start}


def lpips_status(weights: str | None) -> str:
    """"available" only when the configured LPIPS weights file and the ``lpips`` package are both present."""
    if not weights:
        return "unavailable: no LPIPS backbone weights configured (protocol.lpips_weights)"
    if not Path(weights).exists():
        return f"unavailable: {weights} not found"
    try:
        import lpips  # noqa: F401
    except ImportError:
        return "unavailable: the lpips package is not installed"
    return "available"


def lpips_distance(video: np.ndarray, clean: np.ndarray, start: int, weights: str) -> float:
    """Mean LPIPS (AlexNet) over the suffix frames, with the weights file given (never downloaded)."""
    import lpips
    import torch

    model = lpips.LPIPS(net="alex", pretrained=True, pnet_rand=True, model_path=weights, verbose=False).eval()

    def tensor(frames: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(frames).permute(0, 3, 1, 2).float() / 127.5 - 1

    count = min(len(video), len(clean))
    with torch.no_grad():
        return float(model(tensor(video[start:count]), tensor(clean[start:count])).mean())
