"""End to end on Ray: encode step, Ray Data decode, a 2-worker TorchTrainer (DDP), checkpoints and resume."""
from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from training.config import DataConfig, RayTrainConfig
from training.data import build_dataset
from training.run import ray_session, train

TINY = Path(__file__).resolve().parents[2] / "configs" / "train-tiny.yaml"


@pytest.fixture(scope="module")
def ray_local() -> Iterator[None]:
    import ray

    with ray_session(RayTrainConfig(num_cpus=2)):
        temp_dir = Path(ray._private.worker.global_worker.node.get_temp_dir_path())
        yield
    assert not ray.is_initialized() and not temp_dir.exists()  # a local session leaves no folder in /tmp


def _config(tmp_path: Path, **data: object) -> Path:
    config = yaml.safe_load(TINY.read_text())
    config.update(max_steps=4, log_every=1, checkpoint_every=2, run_name=f"test-{uuid.uuid4().hex[:8]}")
    config["ray"] = {"num_cpus": 2, "num_workers": 2, "cpus_per_worker": 0.5, "torch_threads": 1}
    config["data"].update(data)
    path = tmp_path / "train.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_train_on_ray_writes_outputs_and_resumes(tiny_shards: Path, tmp_path: Path, ray_local: None) -> None:
    config, out = _config(tmp_path), tmp_path / "out"
    first = train(tiny_shards, config, out)
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [1, 2, 3, 4]
    assert all({"step", "loss", "regime"} <= set(r) for r in records)
    assert first["checkpoint"] and json.loads((Path(first["checkpoint"]) / "state.json").read_text())["step"] == 4
    assert first["heatmaps"] and Path(first["heatmaps"][0]).name == "kv_importance_000004.png"
    assert first["resumed_from_step"] is None and Path(first["latents"]).parent == tiny_shards.parent

    second = train(tiny_shards, config, out, max_steps=6)
    assert second["resumed_from_step"] == 4
    steps = [json.loads(line)["step"] for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert steps == [1, 2, 3, 4, 5, 6]
    assert json.loads((Path(second["checkpoint"]) / "state.json").read_text())["step"] == 6
    assert len(list((out / "checkpoints").glob("*/checkpoint_2*"))) == 2  # keep_checkpoints


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_ray_data_decodes_mp4_in_the_workers(tiny_shards: Path, ray_local: None) -> None:
    rows = build_dataset(tiny_shards, DataConfig(latents="on_the_fly")).take_all()
    assert sorted(r["key"] for r in rows) == ["clip000", "clip001", "clip002", "clip003"]
    by_key = {r["key"]: r for r in rows}
    assert by_key["clip000"]["clean"].shape == by_key["clip000"]["observed"].shape == (81, 64, 112, 3)
    assert by_key["clip001"]["observed"].size == 0 and by_key["clip001"]["interruption"] == "none"
