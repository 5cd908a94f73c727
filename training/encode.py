"""The optional ``encode`` step: VAE latents of every shard, written as latent shards next to the originals.

``<shards>/../latents-<tag>/<shard name>.tar`` holds per sample ``clean_latent.npy`` (16, 21, h, w) float32,
``observed_latent.npy`` (only when the sample has degraded.mp4), ``clean_cameras.npy`` / ``observed_cameras.npy``
(21, 14) PM-RoPE descriptors, and ``graph.json``, ``meta.json``, ``txt`` copied. The tag hashes the VAE config and
the frame size, so a changed VAE never reads stale latents. A shard is written to a temporary name and renamed:
an interrupted step leaves no truncated shard and a rerun encodes only what is missing.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import webdataset as wds

from schemas.sample_io import decode_sample, npy_bytes
from training.cameras import sample_cameras
from training.config import TrainConfig, VAEConfig
from training.data import shard_paths
from training.vae import LatentEncoder, vae_tag


def latent_dir_for(shards: Path, cfg: TrainConfig) -> Path:
    return Path(shards).resolve().parent / f"latents-{vae_tag(cfg.vae, cfg.data.height, cfg.data.width)}"


def raw_samples(path: str) -> Any:
    """Raw samples of one tar ({"__key__": ..., "mp4": bytes, ...}), in file order."""
    return wds.WebDataset(path, shardshuffle=False, empty_check=False)


def encode_shard(path: str, out_path: Path, encoder: LatentEncoder, height: int, width: int) -> int:
    """Encode one shard; returns the number of samples written."""
    tmp = out_path.with_name(out_path.name + ".tmp")
    count = 0
    with wds.TarWriter(str(tmp), encoder=False) as sink:
        for raw in raw_samples(path):
            sample = decode_sample(raw)
            clean_cams, observed_cams = sample_cameras(sample)
            members = {
                "__key__": sample.key,
                "clean_latent.npy": npy_bytes(encoder.encode(sample.clean_frames((height, width))).numpy()),
                "clean_cameras.npy": npy_bytes(clean_cams),
                "observed_cameras.npy": npy_bytes(observed_cams),
                "graph.json": raw["graph.json"],
                "meta.json": raw["meta.json"],
                "txt": sample.caption.encode(),
            }
            if sample.degraded_mp4 is not None:
                latents = encoder.encode(sample.degraded_frames((height, width)))
                members["observed_latent.npy"] = npy_bytes(latents.numpy())
            sink.write(members)
            count += 1
    tmp.rename(out_path)
    return count


def _encode_shards_local(paths: list[str], out_dir: str, vae: dict[str, Any], height: int, width: int) -> int:
    encoder = LatentEncoder(VAEConfig.model_validate(vae))
    return sum(encode_shard(p, Path(out_dir) / Path(p).name, encoder, height, width) for p in paths)


def encode_shards(shards: Path, cfg: TrainConfig, use_ray: bool = True) -> Path:
    """Write the missing latent shards (one Ray task per shard when ``use_ray``); returns their folder."""
    out_dir = latent_dir_for(shards, cfg)
    out_dir.mkdir(parents=True, exist_ok=True)
    todo = [p for p in shard_paths(shards) if not (out_dir / Path(p).name).exists()]
    args = (str(out_dir), cfg.vae.model_dump(mode="json"), cfg.data.height, cfg.data.width)
    if todo and use_ray:
        import ray

        task = ray.remote(_encode_shards_local).options(num_cpus=cfg.data.decode_cpus)
        ray.get([task.remote([p], *args) for p in todo])
    elif todo:
        _encode_shards_local(todo, *args)
    return out_dir
