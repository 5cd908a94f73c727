"""The data path without Ray: decoding rows through schemas, latent shards, the mixture sampler."""
from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
import webdataset as wds

from training.config import MixtureConfig, TrainConfig, VAEConfig
from training.data import MixtureSampler, decode_latent_row, decode_row, row_to_sample, shard_paths
from training.encode import encode_shards, raw_samples
from training.vae import LatentEncoder

TINY_VAE = VAEConfig(base_dim=4)


def test_decode_row_gives_both_videos_cameras_and_categories(tiny_shards: Path) -> None:
    occluded, clean = (decode_row(raw, 64, 112) for raw in raw_samples(shard_paths(tiny_shards)[0]))
    assert occluded["clean"].shape == occluded["observed"].shape == (81, 64, 112, 3)
    assert occluded["clean"].dtype == np.uint8
    assert clean["observed"].size == 0  # no degraded.mp4
    assert occluded["clean_cameras"].shape == (21, 14)
    np.testing.assert_allclose(occluded["clean_cameras"][0, 9:12], [-1.0, 0.0, 0.0], atol=1e-6)  # x from 0 to 1
    assert (occluded["source"], occluded["event_group"], occluded["interruption"]) == ("synthetic", "motion",
                                                                                       "occluder")
    assert (clean["source"], clean["interruption"]) == ("local", "none")
    hidden = occluded["observed"][25, :, 40:90].mean()  # chunk 2 frames are occluded in the degraded clip only
    assert hidden < 5 < occluded["clean"][25, :, 40:90].mean()


def test_latent_encoder_compresses_81_frames_to_21_latents() -> None:
    frames = np.random.default_rng(0).integers(0, 255, (81, 32, 48, 3), dtype=np.uint8)
    latents = LatentEncoder(TINY_VAE).encode(frames)
    assert latents.shape == (16, 21, 4, 6) and latents.dtype == torch.float32
    torch.testing.assert_close(latents, LatentEncoder(TINY_VAE).encode(frames))  # fixed seed, mode of the posterior


def test_encode_step_writes_latent_shards_next_to_the_originals(tiny_shards: Path) -> None:
    cfg = TrainConfig(vae=TINY_VAE)
    out = encode_shards(tiny_shards, cfg, use_ray=False)
    assert out.parent == tiny_shards.parent and out.name.startswith("latents-")
    assert sorted(p.name for p in out.glob("*.tar")) == [Path(p).name for p in shard_paths(tiny_shards)]
    assert not list(out.glob("*.tmp"))
    rows = [decode_latent_row(raw) for path in shard_paths(out)
            for raw in wds.WebDataset(path, shardshuffle=False, empty_check=False)]
    assert [r["key"] for r in rows] == ["clip000", "clip001", "clip002", "clip003"]
    first = row_to_sample(rows[0], None)
    assert first.has_degraded and first.latents["observed"].shape == (16, 21, 8, 14)
    assert not row_to_sample(rows[1], None).has_degraded
    # on the fly gives the same latents as the cache
    frame_row = decode_row(next(iter(raw_samples(shard_paths(tiny_shards)[0]))), 64, 112)
    fresh = row_to_sample(frame_row, LatentEncoder(TINY_VAE))
    torch.testing.assert_close(fresh.latents["clean"], first.latents["clean"])
    stamp = (out / "shard-00000.tar").stat().st_mtime_ns
    encode_shards(tiny_shards, cfg, use_ray=False)  # rerun: nothing to do
    assert (out / "shard-00000.tar").stat().st_mtime_ns == stamp


def _rows() -> list[dict[str, str]]:
    rows = [{"key": f"a{i}", "source": "pexels", "event_group": "pour", "interruption": "occluder"} for i in range(9)]
    rows.append({"key": "b0", "source": "synthetic", "event_group": "pour", "interruption": "none"})
    return rows


def test_mixture_sampler_mixes_categories_by_weight_not_prevalence() -> None:
    cfg = MixtureConfig(sources={"pexels": 1.0, "synthetic": 1.0}, buffer_size=10)
    sampler = MixtureSampler(_rows, cfg, seed=0)
    draws = Counter(next(sampler)["source"] for _ in range(4000))
    assert abs(draws["synthetic"] / 4000 - 0.5) < 0.05  # 1 row in 10, drawn half the time


def test_mixture_sampler_weight_zero_excludes_and_weights_multiply() -> None:
    cfg = MixtureConfig(interruptions={"none": 0.0}, buffer_size=4)
    sampler = MixtureSampler(_rows, cfg, seed=0)
    assert all(next(sampler)["source"] == "pexels" for _ in range(200))
    weighted = MixtureSampler(_rows, MixtureConfig(sources={"synthetic": 3.0}, event_groups={"pour": 2.0}), seed=1)
    assert weighted.weight(_rows()[-1]) == 6.0 and weighted.weight(_rows()[0]) == 2.0


def test_mixture_sampler_is_deterministic_and_memory_bounded() -> None:
    cfg = MixtureConfig(buffer_size=3)
    a, b = MixtureSampler(_rows, cfg, seed=4), MixtureSampler(_rows, cfg, seed=4)
    assert [next(a)["key"] for _ in range(50)] == [next(b)["key"] for _ in range(50)]
    assert len(a.buffer) <= cfg.buffer_size


def test_mixture_sampler_refuses_data_without_positive_weight() -> None:
    sampler = MixtureSampler(_rows, MixtureConfig(default=0.0), seed=0)
    with pytest.raises(RuntimeError, match="positive mixture weight"):
        next(sampler)
