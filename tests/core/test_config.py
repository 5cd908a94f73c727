"""Configuration: defaults = configs/offline.yaml; a file sets only what it overrides; unknown keys fail."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from remind_curate.cli import main
from schemas.config import Config, load_config

ROOT = Path(__file__).resolve().parents[2]


def test_offline_profile_equals_defaults():
    assert load_config(ROOT / "configs" / "offline.yaml") == Config()
    # and spells out every option, so the file a user copies shows them all
    written = yaml.safe_load((ROOT / "configs" / "offline.yaml").read_text())
    assert written == Config().model_dump(mode="json")


def test_gpu_profile_loads_and_selects_real_models():
    gpu = load_config(ROOT / "configs" / "gpu.yaml")
    assert gpu.vlm.enabled and gpu.vlm.model and gpu.geometry.backend == "da3" and gpu.geometry.model


def test_partial_file_overrides_only_its_keys(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump({"vlm": {"backend": "openai", "base_url": "http://127.0.0.1:9/v1",
                                            "model": "Qwen/Qwen3-VL-8B-Instruct"}}))
    config = load_config(path)
    assert config.vlm.backend == "openai" and config.vlm.model == "Qwen/Qwen3-VL-8B-Instruct"
    assert config.vlm.num_frames == Config().vlm.num_frames and config.geometry == Config().geometry
    assert config.config_hash != Config().config_hash


def test_unknown_key_is_an_error(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("prefilter:\n  motion:\n    min_spatial_ocupancy: 0.2\n")
    with pytest.raises(ValueError, match="min_spatial_ocupancy"):
        load_config(path)


def test_config_show_prints_effective_config(capsys):
    assert main(["config", "show"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"# config hash {Config().config_hash}")
    assert yaml.safe_load(out)["normalise"]["fps"] == 16
