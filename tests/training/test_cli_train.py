"""`remind-curate encode` and `remind-curate train` run for real from the command line (tiny model, CPU Ray)."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

from remind_curate.cli import main
from tests.training.test_run import TINY, ray_local  # noqa: F401  (the module's Ray instance)


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_encode_then_train_from_the_cli(tiny_shards: Path, tmp_path: Path, ray_local: None, capsys) -> None:  # noqa: F811
    shards = tmp_path / "data" / "shards"
    shutil.copytree(tiny_shards, shards)
    config = yaml.safe_load(TINY.read_text())
    config.update(max_steps=50, log_every=1, checkpoint_every=2, run_name="cli-test")
    config["ray"] = {"num_cpus": 2, "num_workers": 1, "cpus_per_worker": 1.0, "torch_threads": 1}
    path = tmp_path / "train.yaml"
    path.write_text(yaml.safe_dump(config))

    assert main(["encode", "--shards", str(shards), "--config", str(path)]) == 0
    printed = [Path(line) for line in capsys.readouterr().out.split()]
    latents = next(p for p in printed if p.name.startswith("latents-"))  # the latent cache it wrote
    assert latents.parent == shards.parent and all(p.is_dir() for p in printed)
    assert sorted(p.name for p in latents.glob("*.tar")) == sorted(p.name for p in shards.glob("*.tar"))

    out = tmp_path / "run"
    assert main(["train", "--shards", str(shards), "--config", str(path), "--out", str(out),
                 "--max-steps", "2"]) == 0  # --max-steps overrides the file's 50
    result = json.loads(capsys.readouterr().out)
    assert (result["first_step"], result["last_step"]) == (1, 2)
    steps = [json.loads(line)["step"] for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert steps == [1, 2] and (out / "summary.json").is_file()
    assert json.loads((out / "summary.json").read_text())["last_step"] == 2
