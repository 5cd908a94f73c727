"""The production loaders of the Wan transformer and VAE (``from_pretrained`` of a diffusers folder), exercised
on tiny random-weight bundles saved offline: what is saved is what the training code loads, weight for weight."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from diffusers import AutoencoderKLWan, WanTransformer3DModel

from training.config import load_train_config
from training.model.wan_causal import build_model, load_transformer
from training.vae import LatentEncoder, load_vae

REPO = Path(__file__).resolve().parents[2]


def _same_weights(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_transformer_saved_as_a_diffusers_folder_loads_through_the_training_loader(tmp_path: Path) -> None:
    cfg = load_train_config(REPO / "configs" / "train-tiny.yaml").model
    saved = load_transformer(cfg, seed=7)  # a tiny random Wan, standing in for Wan2.1-T2V's transformer
    saved.save_pretrained(tmp_path / "wan" / "transformer")
    pretrained = cfg.model_copy(update={"pretrained": str(tmp_path / "wan")})

    loaded = load_transformer(pretrained, seed=0)  # the seed must not matter when weights are loaded
    assert type(loaded) is WanTransformer3DModel
    assert _same_weights(loaded.state_dict(), saved.state_dict())
    assert not _same_weights(load_transformer(cfg, seed=0).state_dict(), saved.state_dict())  # not a re-init

    # the model training builds from it: every stock weight as loaded, the new PM-RoPE modules the only new keys
    model = build_model(pretrained, torch.device("cpu"))
    stock = saved.state_dict()
    state = model.state_dict()
    assert set(stock) <= set(state)
    assert all(torch.equal(state[k], stock[k]) for k in stock)
    assert set(state) - set(stock) and all("rope" in k or "pm" in k for k in set(state) - set(stock)), \
        sorted(set(state) - set(stock))[:5]


def test_vae_saved_as_a_diffusers_folder_loads_and_encodes(tmp_path: Path) -> None:
    cfg = load_train_config(REPO / "configs" / "train-tiny.yaml").vae
    saved = load_vae(cfg.model_copy(update={"seed": 11}))
    saved.save_pretrained(tmp_path / "wan" / "vae")
    pretrained = cfg.model_copy(update={"pretrained": str(tmp_path / "wan")})

    loaded = load_vae(pretrained)
    assert type(loaded) is AutoencoderKLWan
    assert _same_weights(loaded.state_dict(), saved.state_dict())
    assert not _same_weights(load_vae(cfg).state_dict(), saved.state_dict())

    # the latent encoder training uses, on the loaded VAE: Wan's compression (x8 space, x4 time) and stats
    encoder = LatentEncoder(pretrained)
    frames = np.random.default_rng(0).integers(0, 256, (5, 32, 48, 3), dtype=np.uint8)
    latents = encoder.encode(frames)
    assert tuple(latents.shape) == (16, 2, 4, 6) and torch.isfinite(latents).all()
    np.testing.assert_allclose(encoder.mean.flatten().numpy(), loaded.config.latents_mean, rtol=1e-6)
