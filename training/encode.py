"""The ``encode`` step: VAE latents of every shard as latent shards next to the originals, and the UMT5 embedding of
every prompt in ``<shards>/../text-<tag>/`` (``encode_text_cache``; see ``training.text``).

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
from training.text import encode_texts, prompt_for, text_dir_for
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
            if "degraded.txt" in raw:
                members["degraded.txt"] = raw["degraded.txt"]
            if sample.degraded_mp4 is not None:
                latents = encoder.encode(sample.degraded_frames((height, width)))
                members["observed_latent.npy"] = npy_bytes(latents.numpy())
            sink.write(members)
            count += 1
    tmp.rename(out_path)
    return count


def _encode_shards_local(paths: list[str], out_dir: str, vae: dict[str, Any], height: int, width: int,
                         device: str = "cpu") -> int:
    encoder = LatentEncoder(VAEConfig.model_validate(vae), device)
    return sum(encode_shard(p, Path(out_dir) / Path(p).name, encoder, height, width) for p in paths)


def encode_shards(shards: Path, cfg: TrainConfig, use_ray: bool = True) -> Path:
    """Write the missing latent shards (one Ray task per shard when ``use_ray``); returns their folder."""
    out_dir = latent_dir_for(shards, cfg)
    out_dir.mkdir(parents=True, exist_ok=True)
    todo = [p for p in shard_paths(shards) if not (out_dir / Path(p).name).exists()]
    args = (str(out_dir), cfg.vae.model_dump(mode="json"), cfg.data.height, cfg.data.width,
            "cuda" if cfg.data.encode_gpus > 0 else "cpu")
    if todo and use_ray:
        import ray

        task = ray.remote(_encode_shards_local).options(num_cpus=cfg.data.decode_cpus, num_gpus=cfg.data.encode_gpus)
        ray.get([task.remote([p], *args) for p in todo])
    elif todo:
        _encode_shards_local(todo, *args)
    return out_dir


def shard_prompts(shards: Path, source: str) -> list[str]:
    """Every distinct prompt of the shards under ``text.source`` (text members only: no video is decoded)."""
    prompts = set()
    for path in shard_paths(shards):
        for raw in wds.WebDataset(path, shardshuffle=False, empty_check=False):
            members = {k: v.decode() if isinstance(v, bytes) else "" for k, v in raw.items() if k.endswith("txt")}
            prompt = prompt_for(members.get("txt"), members.get("degraded.txt"), source)
            if prompt is not None:
                prompts.add(prompt)
    return sorted(prompts)


def encode_text_cache(shards: Path, cfg: TrainConfig, use_ray: bool = True) -> Path | None:
    """The text half of the encode step: UMT5 embeddings of every prompt without one; returns their folder."""
    if cfg.text.encoder == "none":
        return None
    directory = text_dir_for(shards, cfg)
    encode_texts(shard_prompts(shards, cfg.text.source), directory, cfg, use_ray)
    return directory
