"""The Appendix D evaluation against a scripted OpenAI-compatible reviewer on 127.0.0.1: hand-computed means and
bootstrap intervals, blind shuffled requests at temperature 0.7, prose and errors reported per example."""
from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tasks.evaluate.config import load_evaluate_config
from tasks.evaluate.run import UnreviewedExamples, evaluate
from tasks.evaluate.stats import bootstrap_ci
from tests.servers.openai_server import Reply, ScriptedOpenAIServer, decode_videos
from training.generate.video import write_mp4

COLORS = {"alpha": [40, 80], "beta": [160, 220]}
PROSE = "The video looks quite good overall; the motion is fairly consistent after the occluder leaves."


def _scores(overall: int, rest: int) -> str:
    return json.dumps({"overall_quality": overall, "temporal_consistency": rest, "content_preservation": rest,
                       "artifact_suppression": rest})


def _answer(body: dict) -> Reply | str:
    pixels = decode_videos(body)[0].frames
    color = min((40, 80, 160, 220), key=lambda c: abs(pixels.mean() - c))
    trial = body["seed"] - 42
    if color == 40:
        return _scores(2, 3)
    if color == 80:
        return _scores([3, 5, 4][trial], 3)
    if color == 160:
        return PROSE
    return Reply(status=500, body="overloaded") if trial == 0 else _scores([0, 5, 3][trial], 4)


def _variant(root: Path, name: str) -> Path:
    out = root / name
    lines = []
    for index, color in enumerate(COLORS[name]):
        key = f"{name[0]}{index}"
        frames = np.full((9, 32, 32, 3), color, np.uint8)
        write_mp4(frames, out / "videos" / f"{key}.mp4")
        write_mp4(frames + 10, out / "clean" / f"{key}.mp4")  # MSE 100: PSNR = 10 log10(255^2 / 100) dB
        lines.append(json.dumps({"key": key, "mode": "v2v", "status": "ok", "checkpoint": f"{name}@1", "seed": 1,
                                 "prompt": "p", "video": f"videos/{key}.mp4", "clean_video": f"clean/{key}.mp4",
                                 "suffix_start_frame": 1}))
    lines.append(json.dumps({"key": f"{name[0]}9", "status": "failed", "error": "ValueError: bad sample"}))
    (out / "manifest.jsonl").write_text("\n".join(lines) + "\n")
    return out


def test_bootstrap_by_hand() -> None:
    assert bootstrap_ci(np.array([3.0, 3.0, 3.0]), 200, 0.95, 42) == (3.0, 3.0, 3.0)
    # Two examples 2 and 4: resampled means are 2, 3, 4 with chances 1/4, 1/2, 1/4, so the 2.5 % and 97.5 %
    # percentiles of 1000 resamples are exactly 2 and 4.
    assert bootstrap_ci(np.array([2.0, 4.0, math.nan]), 1000, 0.95, 42) == (3.0, 2.0, 4.0)


@pytest.mark.timeout(120)
def test_evaluate_against_a_scripted_reviewer(tmp_path: Path) -> None:
    dirs = [_variant(tmp_path, "alpha"), _variant(tmp_path, "beta")]
    with ScriptedOpenAIServer(_answer) as server:
        cfg = load_evaluate_config(None, {"vlm": {"backend": "openai", "model": "qwen-test", "base_url":
                                                  server.base_url, "max_retries": 0, "concurrency": 2},
                                          "protocol": {"num_frames": 4}})
        with pytest.raises(UnreviewedExamples) as raised:  # a9, b9 were never generated; b0 got only prose
            evaluate(dirs, tmp_path / "eval", cfg)
        bodies = [r.body for r in server.requests]
    assert str(raised.value).startswith("3 of 6 examples have no successful reviewer trial (2 generation failed, "
                                        "1 answers not the four scores; e.g. alpha/a9, beta/b0, beta/b9)")
    table = raised.value.table
    assert json.loads((tmp_path / "eval" / "table.json").read_text()) == table
    assert len(bodies) == 4 * 3  # four videos, three trials each
    assert {b["temperature"] for b in bodies} == {0.7} and sorted(b["seed"] for b in bodies) == [42] * 4 + [43] * 4 + [44] * 4
    text = json.dumps(bodies)
    assert "alpha" not in text and "beta" not in text and str(tmp_path) not in text  # blind
    alpha, beta = table["variants"]["alpha"], table["variants"]["beta"]
    assert alpha["metrics"]["overall_quality"] == {"mean": 3.0, "ci_low": 2.0, "ci_high": 4.0, "n": 2}
    assert alpha["metrics"]["temporal_consistency"] == {"mean": 3.0, "ci_low": 3.0, "ci_high": 3.0, "n": 2}
    assert alpha["examples"] == 3 and alpha["reviewed"] == 2 and alpha["failed"] == 1
    assert beta["metrics"]["overall_quality"]["mean"] == 4.0 and beta["metrics"]["artifact_suppression"]["n"] == 1
    assert (beta["trials_unparsed"], beta["trials_error"], beta["trials_ok"]) == (3, 1, 2)
    assert alpha["metrics"]["psnr"]["mean"] == pytest.approx(10 * math.log10(255 ** 2 / 100), abs=0.5)
    assert alpha["metrics"]["lpips"]["mean"] is None and "unavailable" in alpha["metrics"]["lpips"]["note"]
    examples = pd.read_parquet(tmp_path / "eval" / "examples.parquet").set_index("key")
    assert examples.loc["a1", "overall_quality"] == 4.0 and examples.loc["b1", "overall_quality"] == 4.0
    assert math.isnan(examples.loc["b0", "overall_quality"]) and examples.loc["b0", "trials_unparsed"] == 3
    assert examples.loc["a9", "status"] == "generation_failed"
    trials = pd.read_parquet(tmp_path / "eval" / "trials.parquet")
    assert len(trials) == 12 and set(trials["status"]) == {"ok", "unparsed", "error"}
    assert PROSE[:40] in trials[trials["status"] == "unparsed"]["answer"].iloc[0]
    markdown = (tmp_path / "eval" / "table.md").read_text()
    assert "| alpha | 2/3 | 3 [2, 4] |" in markdown and "bootstrap" in markdown


def _reviewer(base_url: str, **protocol: object) -> dict:
    return {"vlm": {"backend": "openai", "model": "qwen-test", "base_url": base_url, "max_retries": 0,
                    "concurrency": 2}, "protocol": {"num_frames": 4, **protocol}}


def _one_variant(root: Path) -> Path:
    out = root / "alpha"
    frames = np.full((9, 32, 32, 3), 40, np.uint8)
    write_mp4(frames, out / "videos" / "a0.mp4")
    write_mp4(frames, out / "clean" / "a0.mp4")
    (out / "manifest.jsonl").write_text(json.dumps(
        {"key": "a0", "mode": "v2v", "status": "ok", "checkpoint": "alpha@1", "seed": 1, "prompt": "p",
         "video": "videos/a0.mp4", "clean_video": "clean/a0.mp4", "suffix_start_frame": 1}) + "\n")
    return out


@pytest.mark.timeout(120)
def test_evaluate_command_fails_when_the_reviewer_never_answers(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """The reviewer answers every request with a 500: the table (all n/a) is written, the command exits non-zero
    with one line saying why; with a reviewer that answers, the same command exits 0."""
    from remind_curate.cli import main

    videos = _one_variant(tmp_path)
    config = tmp_path / "eval.yaml"
    with ScriptedOpenAIServer(lambda body: Reply(status=500, body="down")) as server:
        config.write_text(json.dumps(_reviewer(server.base_url, trials=2)))
        status = main(["evaluate", "--videos", str(videos), "--out", str(tmp_path / "down"), "--config", str(config)])
    assert status != 0
    error = capsys.readouterr().err
    assert "1 of 1 examples have no successful reviewer trial (1 reviewer errors; e.g. alpha/a0)" in error
    assert "| alpha | 0/1 | n/a |" in (tmp_path / "down" / "table.md").read_text()
    with ScriptedOpenAIServer(lambda body: _scores(4, 4)) as server:
        config.write_text(json.dumps(_reviewer(server.base_url, trials=2)))
        assert main(["evaluate", "--videos", str(videos), "--out", str(tmp_path / "up"), "--config", str(config)]) == 0
    assert "| alpha | 1/1 | 4 [4, 4] |" in (tmp_path / "up" / "table.md").read_text()


def _serve_limits() -> dict[str, int]:
    """The ``--limit-mm-per-prompt`` JSON of the ``vllm serve`` command that configs/evaluate.yaml documents."""
    text = (Path(__file__).resolve().parents[2] / "configs" / "evaluate.yaml").read_text()
    match = re.search(r"vllm serve \S+ --limit-mm-per-prompt '([^']*)'", text)
    assert match, "configs/evaluate.yaml names no vllm serve command with --limit-mm-per-prompt"
    return json.loads(match.group(1))


@pytest.mark.timeout(120)
def test_the_documented_vllm_flag_admits_what_the_reviewer_sends(tmp_path: Path) -> None:
    """vLLM refuses a prompt with more items of a modality than --limit-mm-per-prompt allows (a modality not
    named gets no budget it can rely on): every request the reviewer sends must fit the documented limits."""
    limits = _serve_limits()
    with ScriptedOpenAIServer(lambda body: _scores(3, 3)) as server:
        cfg = load_evaluate_config(Path(__file__).resolve().parents[2] / "configs" / "evaluate.yaml",
                                   {"vlm": {"base_url": server.base_url, "max_retries": 0}})
        evaluate([_one_variant(tmp_path)], tmp_path / "eval", cfg)
        requests = list(server.requests)
    assert requests
    for request in requests:
        sent = {"image": request.num_images, "video": request.num_videos}
        for modality, count in sent.items():
            assert count == 0 or count <= limits.get(modality, 0), (modality, count, limits)
