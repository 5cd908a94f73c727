"""`remind-curate generate` end to end: a checkpoint folder saved by the loop, real shards, MP4s for every mode."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import yaml

from remind_curate.cli import main
from schemas.mp4 import probe_mp4
from training.config import load_train_config
from training.loop import save_checkpoint
from training.model.wan_causal import build_model

TINY = Path(__file__).resolve().parents[2] / "configs" / "train-tiny.yaml"


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_generate_every_mode(tiny_shards: Path, tmp_path: Path) -> None:
    cfg = load_train_config(TINY, {"generate": {"steps": 2}})
    run = tmp_path / "run"
    checkpoint = run / "checkpoints" / cfg.run_name / "checkpoint_000001"
    checkpoint.mkdir(parents=True)
    (run / "config.yaml").write_text(yaml.safe_dump(cfg.model_dump(mode="json")))
    model = build_model(cfg.model, torch.device("cpu"), seed=0)
    optimizer = torch.optim.AdamW(model.parameters())
    save_checkpoint(checkpoint, model, optimizer, torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: 1.0), 7, cfg)
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
