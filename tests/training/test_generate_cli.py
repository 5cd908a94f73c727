"""`remind-curate generate` end to end: a checkpoint folder saved by the loop, real shards, MP4s for every mode."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
import yaml

from remind_curate.cli import main
from schemas.mp4 import probe_mp4
from training.checkpoint import save_checkpoint
from training.config import TrainConfig, load_train_config
from training.model.wan_causal import build_model

TINY = Path(__file__).resolve().parents[2] / "configs" / "train-tiny.yaml"


def _train_output(tmp_path: Path, steps: int) -> tuple[Path, TrainConfig]:
    """A train output folder with one checkpoint (step 7) of a tiny random-init model, as the loop saves it."""
    cfg = load_train_config(TINY, {"generate": {"steps": steps}})
    run = tmp_path / "run"
    checkpoint = run / "checkpoints" / cfg.run_name / "checkpoint_000001"
    checkpoint.mkdir(parents=True)
    (run / "config.yaml").write_text(yaml.safe_dump(cfg.model_dump(mode="json")))
    model = build_model(cfg.model, torch.device("cpu"), seed=0)
    optimizer = torch.optim.AdamW(model.parameters())
    save_checkpoint(checkpoint, model, optimizer, torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: 1.0), 7, cfg)
    return run, cfg


@pytest.mark.timeout(300)
def test_generate_limit_reads_only_the_samples_it_needs(tiny_shards: Path, tmp_path: Path) -> None:
    """``--limit 1`` over a good first shard and an unreadable second one: the second is never opened."""
    run, _ = _train_output(tmp_path, steps=1)
    shards = tmp_path / "shards"
    shards.mkdir()
    shutil.copy(tiny_shards / "shard-00000.tar", shards / "shard-00000.tar")
    (shards / "shard-00001.tar").write_bytes(b"not a tar archive " * 64)
    out = tmp_path / "gen"
    assert main(["generate", "--checkpoint", str(run), "--shards", str(shards), "--mode", "v2v", "--out", str(out),
                 "--limit", "1"]) == 0
    records = [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]
    assert [(r["key"], r["status"]) for r in records] == [("clip000", "ok")]


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_generate_every_mode(tiny_shards: Path, tmp_path: Path) -> None:
    run, cfg = _train_output(tmp_path, steps=2)
    for mode in ("i2v", "v2v", "reference"):
        out = tmp_path / mode
        assert main(["generate", "--checkpoint", str(run), "--shards", str(tiny_shards), "--mode", mode,
                     "--out", str(out), "--limit", "1"]) == 0
        record = json.loads((out / "manifest.jsonl").read_text().splitlines()[0])
        assert record["status"] == "ok" and record["key"] == "clip000" and record["mode"] == mode
        assert record["checkpoint"] == f"{cfg.run_name}/checkpoint_000001@7"
        assert record["prompt"] == "a square moving, clip 0" and record["text"] == "text"
        assert isinstance(record["seed"], int)
        info = probe_mp4((out / record["video"]).read_bytes())
        assert (info.frames, info.height, info.width) == (81, 64, 112)
        assert probe_mp4((out / record["clean_video"]).read_bytes()).frames == 81
        heatmap = json.loads((out / record["heatmap"]).with_suffix(".json").read_text())
        if mode == "v2v":  # OCCLUDER: the prefix is chunks 0..3 (recovery starts at 4); those rows are given
            assert heatmap["unavailable_rows"] == [0, 1, 2, 3] and record["suffix_start_frame"] == 45
            assert record["prefix_source"] == "observed"
        if mode == "reference":
            assert record["positions"][0] == [3, 4, 5] and record["positions"][1] == [12, 13, 14]
            assert heatmap["unavailable_rows"] == [0]
        if mode == "i2v":
            assert heatmap["unavailable_rows"] == [] and record["suffix_start_frame"] == 1


def _bytes_read() -> int:
    """Bytes this process has read through read(2) so far (/proc/self/io rchar)."""
    for line in Path("/proc/self/io").read_text().splitlines():
        if line.startswith("rchar:"):
            return int(line.split()[1])
    raise AssertionError("no rchar in /proc/self/io")


def test_reading_the_first_sample_does_not_read_the_next_ones_members(tmp_path: Path) -> None:
    """A 64 MiB member in the second sample: taking one sample reads its header, not its data."""
    import io
    import tarfile
    from itertools import islice

    from training.generate.run import read_samples

    (tmp_path / "shards").mkdir()
    with tarfile.open(tmp_path / "shards" / "shard-00000.tar", "w") as tar:
        for name, data in (("a.txt", b"first"), ("a.json", b"{}"), ("b.bin", bytes(64 << 20)), ("b.txt", b"second")):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    before = _bytes_read()
    (first,) = islice(read_samples(tmp_path / "shards"), 1)
    spent = _bytes_read() - before
    assert first == {"__key__": "a", "txt": b"first", "json": b"{}"}
    assert spent < 4 << 20, f"{spent / 2**20:.1f} MiB read for one small sample"
