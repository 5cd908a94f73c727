"""The commands without a test of their own run for real: `taxonomy`, `schema`, `config show` and `demo`.
(`encode` and `train`: tests/training/test_cli_train.py; `validate`: tests/e2e and tests/core.)"""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from remind_curate.cli import main


def test_taxonomy_lists_every_type_and_filters_by_group(capsys) -> None:
    from taxonomy import load_taxonomy

    events = list(load_taxonomy().events)
    assert main(["taxonomy"]) == 0
    rows = {line.split()[0]: line.split()[1] for line in capsys.readouterr().out.splitlines()[2:]
            if len(line.split()) >= 3 and line.split()[0] != "types"}
    assert len(events) >= 100 and {e.id: e.group for e in events}.items() <= rows.items()
    assert main(["taxonomy", "--group", "lighting_weather"]) == 0
    out = capsys.readouterr().out
    listed = {line.split()[0] for line in out.splitlines()[2:] if "lighting_weather" in line.split()[1:2]}
    assert listed == {e.id for e in events if e.group == "lighting_weather"}
    assert not {e.id for e in events if e.group != "lighting_weather"} & {line.split()[0] for line in
                                                                          out.splitlines() if line.split()}
    assert f"total             {len(listed)}" in out


def test_schema_writes_the_json_schemas_the_models_generate(tmp_path: Path, capsys) -> None:
    from schemas import jsonschema

    assert main(["schema", "--dir", str(tmp_path / "json")]) == 0
    written = [Path(line) for line in capsys.readouterr().out.split()]
    assert written and all(p.parent == tmp_path / "json" and p.suffix == ".json" for p in written)
    assert sorted(p.name for p in written) == sorted(p.name for p in (tmp_path / "json").iterdir())
    for path in written:
        schema = json.loads(path.read_text())
        assert "properties" in schema or "$defs" in schema, path.name
    # the same files as the committed ones are produced (the committed ones are checked against the models by
    # tests/core/test_schemas.py); here: the command writes every one of them
    assert {p.name for p in written} == {p.name for p in Path(jsonschema.JSON_DIR).glob("*.schema.json")}


def test_config_show_prints_the_effective_config_and_its_hash(tmp_path: Path, capsys) -> None:
    from schemas.config import load_config

    override = tmp_path / "c.yaml"
    override.write_text("seed: 5\n")
    assert main(["config", "show", "--config", str(override)]) == 0
    text = capsys.readouterr().out
    config = load_config(override)
    assert text.splitlines()[0] == f"# config hash {config.config_hash}"
    assert yaml.safe_load(text)["seed"] == 5


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_demo_ingests_and_validates(prefect_server, tmp_path: Path, capsys) -> None:
    out = tmp_path / "demo"
    code = main(["demo", "--out", str(out), "--clips", "1"])
    captured = capsys.readouterr()
    assert code == 0, captured.err[-3000:]
    assert "validate: " in captured.out and "OK" in captured.out.splitlines()[-1]
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["inputs"] == 1 and metrics["status"].get("accepted", 0) >= 1
    assert (out / "report.md").is_file() and list((out / "shards").glob("shard-*.tar"))
