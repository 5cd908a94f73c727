"""Wan VAE latents: diffusers' AutoencoderKLWan, normalised with its latents mean/std.

Production loads Wan2.1's VAE with ``from_pretrained``; the tiny setting builds a narrow random-init VAE with the
same architecture and compression (8x spatial, 4x temporal: 81 frames -> 21 latent frames) and Wan's mean/std.
"""
from __future__ import annotations

import numpy as np
import torch
from diffusers import AutoencoderKLWan

from schemas.config_section import stable_hash
from training.config import VAEConfig


def load_vae(cfg: VAEConfig) -> AutoencoderKLWan:
    if cfg.pretrained:
        return AutoencoderKLWan.from_pretrained(cfg.pretrained, subfolder=cfg.pretrained_subfolder)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.seed)
        return AutoencoderKLWan(base_dim=cfg.base_dim, z_dim=16, dim_mult=[1, 2, 4, 4],
                                num_res_blocks=cfg.num_res_blocks, attn_scales=[],
                                temperal_downsample=[False, True, True])


def vae_tag(cfg: VAEConfig, height: int, width: int) -> str:
    """Names the latent cache: changes whenever the latents would."""
    return stable_hash({"vae": cfg.model_dump(mode="json"), "size": [height, width]}, chars=12, compact=False)


class LatentEncoder:
    """Frames (T, H, W, 3) uint8 -> normalised latents (16, 1 + (T - 1) / 4, H / 8, W / 8) float32."""

    def __init__(self, cfg: VAEConfig, device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32):
        self.device, self.dtype = torch.device(device), dtype
        self.vae = load_vae(cfg).to(self.device, dtype).eval().requires_grad_(False)
        z_dim = self.vae.config.z_dim
        self.mean = torch.tensor(self.vae.config.latents_mean, device=self.device).view(1, z_dim, 1, 1, 1)
        self.std = torch.tensor(self.vae.config.latents_std, device=self.device).view(1, z_dim, 1, 1, 1)

    @torch.inference_mode()
    def encode(self, frames: np.ndarray) -> torch.Tensor:
        video = torch.from_numpy(np.ascontiguousarray(frames)).to(self.device).permute(3, 0, 1, 2)[None]
        video = video.to(self.dtype) / 127.5 - 1.0
        latents = self.vae.encode(video).latent_dist.mode().float()  # the mean: deterministic latents
        return ((latents - self.mean) / self.std)[0].cpu()

    @torch.inference_mode()
    def decode(self, latents: torch.Tensor) -> np.ndarray:
        """Normalised latents (16, F, h, w) -> frames (1 + 4 (F - 1), 8 h, 8 w, 3) uint8."""
        z = latents[None].to(self.device, self.dtype) * self.std.to(self.dtype) + self.mean.to(self.dtype)
        video = self.vae.decode(z).sample[0].float().clamp(-1, 1)  # (3, T, H, W)
        return ((video + 1) * 127.5).round().to(torch.uint8).permute(1, 2, 3, 0).cpu().numpy()
