"""Training-loader throughput: samples/s of the Ray Data loader vs a raw tar read + decode of the same shards.

    .venv/bin/python benchmarks/loader.py --shards OUT/shards --config configs/train-tiny.yaml
    .venv/bin/python benchmarks/loader.py --samples 8          # synthetic 64x112 shards (tests' generator)

raw: one process, webdataset read + schemas.decode_sample + both MP4s decoded at the config's frame size.
loader: ray.data.read_webdataset -> decode map in Ray Data tasks -> MixtureSampler, as the training workers see it
(Ray start-up excluded and reported separately; the time includes the first row). latents: the same loader
over the encode step's latent shards (what the tiny config trains on).
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine.runtime import configure_process  # noqa: E402

configure_process()

from training.config import TrainConfig, load_train_config  # noqa: E402
from training.data import MixtureSampler, build_dataset, shard_paths  # noqa: E402


def synthetic_shards(directory: Path, count: int) -> Path:
    from tests.training.shards import make_sample, write_shards

    return write_shards(directory, [make_sample(i, i % 2 == 0) for i in range(count)], per_shard=4)


def raw_read(shards: Path, cfg: TrainConfig) -> tuple[int, float]:
    from schemas.sample_io import decode_sample
    from training.encode import raw_samples

    started, count = time.perf_counter(), 0
    for path in shard_paths(shards):
        for raw in raw_samples(path):
            sample = decode_sample(raw)
            sample.clean_frames((cfg.data.height, cfg.data.width))
            if sample.degraded_mp4 is not None:
                sample.degraded_frames((cfg.data.height, cfg.data.width))
            count += 1
    return count, time.perf_counter() - started


def loader_read(shards: Path, cfg: TrainConfig, latent_dir: Path | None, total: int) -> tuple[int, float, float]:
    """(rows, seconds, seconds to the first row) for ``total`` draws from the sampler, Ray start-up excluded."""
    dataset = build_dataset(shards, cfg.data, latent_dir)
    sampler = MixtureSampler(lambda: dataset.iter_rows(), cfg.data.mixture.model_copy(update={"buffer_size": 1}),
                             seed=0)
    started = time.perf_counter()
    next(sampler)
    first = time.perf_counter() - started
    for _ in range(total - 1):
        next(sampler)
    return total, time.perf_counter() - started, first


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shards", type=Path, help="a folder of *.tar shards (default: synthetic ones)")
    parser.add_argument("--samples", type=int, default=8, help="synthetic samples when --shards is not given")
    parser.add_argument("--config", type=Path, default=Path("configs/train-tiny.yaml"))
    parser.add_argument("--epochs", type=int, default=2)
    args = parser.parse_args(argv)

    from training.encode import encode_shards
    from training.run import ray_session

    cfg = load_train_config(args.config)
    with tempfile.TemporaryDirectory(prefix="loader-bench") as tmp:
        shards = args.shards or synthetic_shards(Path(tmp) / "shards", args.samples)
        count, seconds = raw_read(shards, cfg)
        print(f"raw tar read + decode: {count} samples in {seconds:.2f} s = {count / seconds:.2f} samples/s")
        started = time.perf_counter()
        with ray_session(cfg.ray):
            print(f"ray start: {time.perf_counter() - started:.1f} s")
            rows, seconds, first = loader_read(shards, cfg, None, args.epochs * count)
            print(f"training loader (decode in Ray Data): {rows} samples in {seconds:.2f} s = {rows / seconds:.2f} "
                  f"samples/s (first row after {first:.1f} s)")
            latent_dir = encode_shards(shards, cfg)
            rows, seconds, first = loader_read(shards, cfg, latent_dir, args.epochs * count)
            print(f"training loader (cached latents): {rows} samples in {seconds:.2f} s = {rows / seconds:.2f} "
                  f"samples/s (first row after {first:.1f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
