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


def test_evaluate_flow_parameters_match_the_deployment() -> None:
    from flows.evaluate import evaluate_flow, evaluate_task
    from flows.generate import generate_flow, generate_task

    deployments = yaml.safe_load((Path(__file__).resolve().parents[2] / "prefect.yaml").read_text())["deployments"]
    evaluate = next(d for d in deployments if d["name"] == "evaluate")
    assert evaluate["entrypoint"] == "flows/evaluate.py:evaluate_flow" and evaluate["schedules"]
    parameters = inspect.signature(evaluate_flow.fn).parameters
    assert set(evaluate["parameters"]) <= set(parameters)
    assert {name for name, p in parameters.items() if p.default is inspect.Parameter.empty} <= set(
        evaluate["parameters"])
    assert (evaluate_flow.name, evaluate_task.name, generate_flow.name, generate_task.name) == (
        "evaluate", "evaluate", "generate", "generate")
    assert (Path(__file__).resolve().parents[2] / evaluate["parameters"]["eval_config"]).is_file()
