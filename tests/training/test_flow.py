"""The Prefect train flow: its parameters match the deployment in prefect.yaml."""
from __future__ import annotations

import inspect
from pathlib import Path

import yaml

from flows.train import train_flow, train_task


def test_train_flow_parameters_match_the_deployment() -> None:
    deployments = yaml.safe_load((Path(__file__).resolve().parents[2] / "prefect.yaml").read_text())["deployments"]
    train = next(d for d in deployments if d["name"] == "train")
    assert train["entrypoint"] == "flows/train.py:train_flow"
    assert set(train["parameters"]) <= set(inspect.signature(train_flow.fn).parameters)
    assert train_flow.name == "train" and train_task.name == "train"
