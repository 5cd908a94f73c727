"""The training data path: shards -> Ray Data (decode in the workers) -> a mixture sampler -> training samples.

Shards are read only through ``schemas`` (``decode_sample``). A frame row carries both videos of a sample: ``clean``
(mp4) and ``observed`` (degraded.mp4, the interrupted clip; empty when there is none), each resized in the decoder
to ``data.height x data.width`` (64x112 in the tiny setting, 480x832 in production), plus PM-RoPE descriptors per
video, the graph and the mixture categories. A latent row (from the ``encode`` step's shards) carries latents
instead of frames. ``rows_to_sample`` turns either into what the loop needs.
"""
from __future__ import annotations

import json
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from typing import TYPE_CHECKING

import numpy as np

from schemas.graph import FrameGraph
from schemas.sample_io import decode_sample, load_npy
from training.cameras import sample_cameras
from training.config import DataConfig, MixtureConfig

if TYPE_CHECKING:  # the decode workers import this module: keep torch and diffusers out of it
    import torch

    from training.vae import LatentEncoder

EMPTY = np.zeros((0,), dtype=np.uint8)


def shard_paths(directory: Path) -> list[str]:
    paths = sorted(str(p) for p in Path(directory).glob("*.tar"))
    if not paths:
        raise FileNotFoundError(f"no *.tar shards in {directory}")
    return paths


def categories(meta: dict[str, Any] | Any) -> dict[str, str]:
    """The mixture axes of a sample: source kind, event group, interruption kind."""
    if not isinstance(meta, dict):
        meta = meta.model_dump(mode="json")
    return {"source": str(meta["source"]["kind"]), "event_group": str(meta.get("event_group") or "none"),
            "interruption": str(meta.get("interruption") or "none")}


def present(raw: dict[str, Any]) -> dict[str, Any]:
    """Drop the entries a sample lacks: Ray Data fills a column missing from some rows with None or NaN."""
    return {k: v for k, v in raw.items() if isinstance(v, (bytes, bytearray, str))}


def decode_row(raw: dict[str, Any], height: int, width: int) -> dict[str, Any]:
    """One raw webdataset row (bytes per entry) -> a frame row. Runs in the Ray Data workers."""
    sample = decode_sample(present(raw))
    clean_cams, observed_cams = sample_cameras(sample)
    return {
        "key": sample.key,
        "clean": sample.clean_frames((height, width)),
        "observed": sample.degraded_frames((height, width)) if sample.degraded_mp4 is not None else EMPTY,
        "clean_cameras": clean_cams,
        "observed_cameras": observed_cams,
        "graph": sample.graph.model_dump_json(),
        "caption": sample.caption,
        "instruction": sample.extra.get("degraded.txt", b"").decode(),
        **categories(sample.meta),
    }


def decode_latent_row(raw: dict[str, Any]) -> dict[str, Any]:
    """One row of a latent shard written by ``training.encode`` -> a latent row."""
    raw = present(raw)

    def text(name: str) -> str:
        value = raw.get(name)
        return value.decode() if isinstance(value, (bytes, bytearray)) else str(value or "")

    meta = json.loads(text("meta.json"))
    observed = raw.get("observed_latent.npy")
    return {
        "key": raw["__key__"],
        "clean_latent": load_npy(raw["clean_latent.npy"]),
        "observed_latent": load_npy(observed) if observed is not None else np.zeros((0,), np.float32),
        "clean_cameras": load_npy(raw["clean_cameras.npy"]),
        "observed_cameras": load_npy(raw["observed_cameras.npy"]),
        "graph": text("graph.json"),
        "caption": text("txt"),
        "instruction": text("degraded.txt"),
        **categories(meta),
    }


def build_dataset(shards: Path | str, cfg: DataConfig, latent_dir: Path | None = None) -> Any:
    """A Ray Dataset of frame rows (decoding MP4s in Ray Data tasks), or of latent rows from ``latent_dir``.
    ``shards`` is a local folder or an ``s3://bucket/prefix`` URL (read by every node from the bucket)."""
    import ray.data

    from training.storage import list_shards

    context = ray.data.DataContext.get_current()
    context.execution_options.preserve_order = True  # a fixed seed gives a fixed sample order
    pool = ray.data.TaskPoolStrategy(size=cfg.decode_concurrency)  # bounds the decoded rows in flight
    fs, paths = list_shards(latent_dir if latent_dir is not None else shards)
    # One read task per shard: shards are read in parallel and split across the training workers.
    raw = ray.data.read_webdataset(paths, filesystem=fs, decoder=None, override_num_blocks=len(paths),
                                   num_cpus=cfg.decode_cpus)
    if latent_dir is not None:
        return raw.map(decode_latent_row, num_cpus=cfg.decode_cpus, compute=pool)
    return raw.map(decode_row, fn_kwargs={"height": cfg.height, "width": cfg.width}, num_cpus=cfg.decode_cpus,
                   compute=pool)


class MixtureSampler:
    """Endless weighted sampling with replacement from a bounded buffer of rows.

    A row's chance is proportional to w_source * w_event_group * w_interruption divided by how many buffered rows
    share its category, so categories are mixed by the config weights rather than by their prevalence. After every
    draw the oldest row makes room for the next one from the stream; the stream restarts when exhausted (epochs).
    """

    AXES = (("source", "sources"), ("event_group", "event_groups"), ("interruption", "interruptions"))

    def __init__(self, epoch: Callable[[], Iterable[dict[str, Any]]], cfg: MixtureConfig, seed: int) -> None:
        self.epoch, self.cfg = epoch, cfg
        self.rng = np.random.default_rng(seed)
        self.buffer: deque[dict[str, Any]] = deque()
        self.stream: Iterator[dict[str, Any]] = iter(())

    def weight(self, row: dict[str, Any]) -> float:
        weight = 1.0
        for axis, table in self.AXES:
            weight *= getattr(self.cfg, table).get(str(row[axis]), self.cfg.default)
        return weight

    def _pull(self) -> dict[str, Any]:
        for _ in range(2):  # the rest of this epoch, then one whole fresh epoch
            for row in self.stream:
                if self.weight(row) > 0:
                    return row
            self.stream = iter(self.epoch())
        raise RuntimeError("the training data holds no sample with a positive mixture weight")

    def __iter__(self) -> "MixtureSampler":
        return self

    def __next__(self) -> dict[str, Any]:
        while len(self.buffer) < self.cfg.buffer_size:
            self.buffer.append(self._pull())
        keys = [tuple(str(row[axis]) for axis, _ in self.AXES) for row in self.buffer]
        counts = Counter(keys)
        probs = np.array([self.weight(row) / counts[k] for row, k in zip(self.buffer, keys)])
        row = self.buffer[int(self.rng.choice(len(self.buffer), p=probs / probs.sum()))]
        self.buffer.popleft()
        return row


@dataclass
class TrainingSample:
    key: str
    graph: FrameGraph
    latents: dict[str, torch.Tensor]  # "clean" and, when the sample has a degraded clip, "observed": (16, 21, h, w)
    cameras: dict[str, torch.Tensor]  # the same keys: (21, 14)
    caption: str
    instruction: str = ""  # degraded.txt, when the sample has one

    @property
    def has_degraded(self) -> bool:
        return "observed" in self.latents


def row_to_sample(row: dict[str, Any], encoder: LatentEncoder | None) -> TrainingSample:
    """A frame row (encoded here with ``encoder``) or a latent row -> latents and cameras per video."""
    import torch

    if "clean_latent" in row:
        latents = {"clean": torch.as_tensor(np.asarray(row["clean_latent"], dtype=np.float32))}
        if np.asarray(row["observed_latent"]).size:
            latents["observed"] = torch.as_tensor(np.asarray(row["observed_latent"], dtype=np.float32))
    else:
        if encoder is None:
            raise ValueError("frame rows need a LatentEncoder (data.latents: on_the_fly)")
        latents = {"clean": encoder.encode(np.asarray(row["clean"]))}
        if np.asarray(row["observed"]).size:
            latents["observed"] = encoder.encode(np.asarray(row["observed"]))
    cameras = {name: torch.as_tensor(np.asarray(row[f"{name}_cameras"], dtype=np.float32)) for name in latents}
    return TrainingSample(key=str(row["key"]), graph=FrameGraph.model_validate_json(row["graph"]), latents=latents,
                          cameras=cameras, caption=_text(row.get("caption")),
                          instruction=_text(row.get("instruction")))


def _text(value: Any) -> str:
    """A text column's value; Ray Data fills a column missing from some rows with None or NaN."""
    return value if isinstance(value, str) else ""
