"""Small shards in the real format for the data-path tests: 81-frame H.264 clips at 64x112 (production: 480x832).

Built with PyAV and webdataset through ``schemas`` (``Sample.to_members``), like the packer writes them.
"""
from __future__ import annotations

import io
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import webdataset as wds

from schemas.constants import FPS, NUM_FRAMES, chunk_frames
from schemas.sample import SampleMeta, SourceInfo
from schemas.sample_io import Sample
from tests.training.graphs import CLEAN, OCCLUDER

SIZE = (64, 112)


def encode_mp4(frames: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=Fraction(FPS))
        stream.height, stream.width = frames.shape[1:3]
        stream.pix_fmt = "yuv420p"
        stream.options = {"preset": "ultrafast", "crf": "23"}
        for frame in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())
    return buffer.getvalue()


def clip(seed: int) -> np.ndarray:
    """A bright square sliding over a smooth gradient: simple motion a tiny model can learn."""
    rng = np.random.default_rng(seed)
    h, w = SIZE
    yy, xx = np.mgrid[0:h, 0:w]
    base = np.stack([xx * 2, yy * 3, np.full_like(xx, 60 + 40 * seed % 150)], axis=-1).clip(0, 255)
    frames = np.repeat(base[None], NUM_FRAMES, axis=0).astype(np.uint8)
    y0, speed = int(rng.integers(8, 40)), float(rng.uniform(0.5, 1.0))
    for f in range(NUM_FRAMES):
        x0 = int(f * speed) % (w - 16)
        frames[f, y0:y0 + 16, x0:x0 + 16] = 255
    return frames


def make_sample(index: int, occluded: bool, source: str = "synthetic", event_group: str = "motion") -> Sample:
    key = f"clip{index:03d}"
    frames = clip(index)
    graph = OCCLUDER if occluded else CLEAN
    c2w = np.tile(np.eye(4, dtype=np.float32), (NUM_FRAMES, 1, 1))
    c2w[:, 0, 3] = np.linspace(0, 1, NUM_FRAMES)
    K = np.tile(np.array([[700.0, 0, 415.5], [0, 700.0, 239.5], [0, 0, 1]], np.float32), (NUM_FRAMES, 1, 1))
    degraded = None
    if occluded:
        hidden = frames.copy()
        start, end = chunk_frames(2)[0], chunk_frames(3)[1]
        hidden[start:end + 1, :, 40:90] = 0
        degraded = encode_mp4(hidden)
    meta = SampleMeta(key=key, clip_id=key, window=0, source=SourceInfo(kind=source, uri=f"test://{key}"),
                      source_span_s=(0.0, NUM_FRAMES / FPS), event_group=event_group,
                      interruption=graph.interruption.kind, config_hash="test", run_id="test")
    return Sample(key=key, mp4=encode_mp4(frames), graph=graph, meta=meta, degraded_mp4=degraded, camera=c2w,
                  intrinsics=K, caption=f"a square moving, clip {index}")


def write_shards(directory: Path, samples: list[Sample], per_shard: int = 2) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for start in range(0, len(samples), per_shard):
        with wds.TarWriter(str(directory / f"shard-{start // per_shard:05d}.tar"), encoder=False) as sink:
            for sample in samples[start:start + per_shard]:
                sink.write({"__key__": sample.key, **sample.to_members()})
    return directory
