"""``evaluate(videos_dirs, out, config)``: every variant's generated videos reviewed blind, scored and tabulated.

Each ``--videos`` folder is one model variant (a ``generate`` output: manifest.jsonl, videos/, clean/). OUT gets
``examples.parquet`` (one row per video: variant, key, checkpoint, paths, per-dimension trial means, PSNR, SSIM,
LPIPS, statuses), ``trials.parquet`` (one row per reviewer call with its raw answer), ``table.json`` and
``table.md`` (per variant: means with 95 % bootstrap intervals over examples, failure counts). When any example
has no successful reviewer trial (its generation failed, its video is unreadable, or every trial errored or was
not the four scores) the outputs are still written, then ``UnreviewedExamples`` is raised: a table of n/a is not a
result, and the command and the flow must fail on it.
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from schemas.mp4 import decode_mp4
from tasks.evaluate.config import EvaluateConfig, load_evaluate_config
from tasks.evaluate.metrics import lpips_distance, lpips_status, suffix_metrics
from tasks.evaluate.reviewer import DIMENSIONS, ReviewerBackend, opaque_id, review
from tasks.evaluate.stats import bootstrap_ci

METRICS = (*DIMENSIONS, "psnr", "ssim", "lpips")


class UnreviewedExamples(RuntimeError):
    """Some examples have no successful trial; ``table`` is what was written to ``out``."""

    def __init__(self, message: str, table: dict[str, Any]) -> None:
        super().__init__(message)
        self.table = table


def unreviewed_message(examples: pd.DataFrame, out: Path) -> str | None:
    """One line naming how many examples have no successful trial and why, or None when every one has."""
    missing = examples[examples["trials_ok"] == 0]
    if missing.empty:
        return None
    reasons = {"generation failed": missing["status"] == "generation_failed",
               "video unreadable": missing["status"] == "failed",
               "reviewer errors": (missing["status"] == "ok") & (missing["trials_error"] > 0),
               "answers not the four scores": (missing["status"] == "ok") & (missing["trials_error"] == 0)}
    counts = ", ".join(f"{int(mask.sum())} {name}" for name, mask in reasons.items() if mask.any())
    first = ", ".join(f"{v}/{k}" for v, k in zip(missing["variant"][:3], missing["key"][:3]))
    return (f"{len(missing)} of {len(examples)} examples have no successful reviewer trial ({counts}; e.g. "
            f"{first}); the table is written to {out / 'table.md'}")


def variant_names(dirs: list[Path]) -> list[str]:
    names: list[str] = []
    for directory in dirs:
        name = Path(directory).resolve().name
        names.append(name if name not in names else f"{name}-{len(names)}")
    return names


def load_examples(directory: Path, variant: str, lpips_weights: str | None,
                  lpips_ok: bool) -> tuple[list[dict[str, Any]], dict[str, np.ndarray]]:
    """Rows (with the pixel metrics) and the frames to review, by opaque id."""
    manifest = Path(directory) / "manifest.jsonl"
    if not manifest.exists():
        raise FileNotFoundError(f"{manifest} not found: is {directory} a generate output folder?")
    rows, frames = [], {}
    for line in manifest.read_text().splitlines():
        record = json.loads(line)
        row = {"variant": variant, "key": record["key"], "mode": record.get("mode"),
               "checkpoint": record.get("checkpoint"), "seed": record.get("seed"), "prompt": record.get("prompt"),
               "video": str(Path(directory) / record["video"]) if record.get("video") else None,
               "id": opaque_id(variant, record["key"]), "status": "ok", "error": None,
               **{name: math.nan for name in METRICS}}
        if record.get("status") != "ok":
            row.update(status="generation_failed", error=record.get("error"))
            rows.append(row)
            continue
        try:
            video = decode_mp4((Path(directory) / record["video"]).read_bytes())
            clean = decode_mp4((Path(directory) / record["clean_video"]).read_bytes())
            start = int(record["suffix_start_frame"])
            row.update(suffix_metrics(video, clean, start))
            if lpips_ok:
                row["lpips"] = lpips_distance(video, clean, start, str(lpips_weights))
            frames[row["id"]] = video
        except Exception as exc:  # an unreadable video is reported, the others go on
            row.update(status="failed", error=f"{type(exc).__name__}: {str(exc)[:300]}")
        rows.append(row)
    return rows, frames


def summarise_variant(frame: pd.DataFrame, cfg: EvaluateConfig, lpips_note: str) -> dict[str, Any]:
    p = cfg.protocol
    entry: dict[str, Any] = {"examples": int(len(frame)), "reviewed": int(frame["valid_trials"].gt(0).sum()),
                             "trials_ok": int(frame["trials_ok"].sum()),
                             "trials_unparsed": int(frame["trials_unparsed"].sum()),
                             "trials_error": int(frame["trials_error"].sum()),
                             "failed": int((frame["status"] != "ok").sum()), "metrics": {}}
    for name in METRICS:
        mean, low, high = bootstrap_ci(frame[name].to_numpy(dtype=float), p.bootstrap, p.confidence, p.seed)
        n = int(np.isfinite(frame[name].to_numpy(dtype=float)).sum())
        entry["metrics"][name] = {"mean": None if math.isnan(mean) else mean, "ci_low": None if n == 0 else low,
                                  "ci_high": None if n == 0 else high, "n": n}
    if lpips_note != "available":
        entry["metrics"]["lpips"]["note"] = lpips_note
    return entry


def markdown_table(table: dict[str, Any]) -> str:
    head = ["variant", "n", *DIMENSIONS, "PSNR", "SSIM", "LPIPS", "trials ok/unparsed/error"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for variant, entry in table["variants"].items():
        cells = [variant, f"{entry['reviewed']}/{entry['examples']}"]
        for name in (*DIMENSIONS, "psnr", "ssim", "lpips"):
            m = entry["metrics"][name]
            cells.append("n/a" if m["mean"] is None else f"{m['mean']:.3g} [{m['ci_low']:.3g}, {m['ci_high']:.3g}]")
        cells.append(f"{entry['trials_ok']}/{entry['trials_unparsed']}/{entry['trials_error']}")
        lines.append("| " + " | ".join(cells) + " |")
    p = table["protocol"]
    lines += ["", f"Means over examples with {int(p['confidence'] * 100)} % bootstrap intervals ({p['bootstrap']} "
              f"resamples, seed {p['seed']}); reviewer {table['reviewer']}, {p['trials']} trials at temperature "
              f"{p['temperature']}, blind and shuffled across variants. LPIPS: {table['lpips']}."]
    return "\n".join(lines) + "\n"


def evaluate(videos: list[Path], out: Path, config: Path | EvaluateConfig | None = None,
             backend: Any = None) -> dict[str, Any]:
    cfg = config if isinstance(config, EvaluateConfig) else load_evaluate_config(config)
    if not videos:
        raise ValueError("evaluate needs at least one --videos folder")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    note = lpips_status(cfg.protocol.lpips_weights)
    rows, frames = [], {}
    for directory, variant in zip(videos, variant_names(videos)):
        found, pixels = load_examples(Path(directory), variant, cfg.protocol.lpips_weights, note == "available")
        rows += found
        frames.update(pixels)
    if not rows:
        raise ValueError(f"no manifest entry in {[str(v) for v in videos]}: nothing to evaluate")
    own = backend is None
    if own:
        if cfg.vlm.backend != "openai":  # the protocol's temperature and seeds travel in the OpenAI request
            raise ValueError("evaluate needs vlm.backend: openai (an OpenAI-compatible server, e.g. vLLM Qwen3-VL)")
        backend = ReviewerBackend(cfg.vlm, cfg.protocol.temperature)
    try:
        trials = review(backend, frames, cfg.protocol)
    finally:
        if own and hasattr(backend, "close"):
            backend.close()
    trial_rows = []
    for row in rows:
        found = trials.get(row["id"], [])
        ok = [t for t in found if t.status == "ok"]
        for name in DIMENSIONS:
            row[name] = float(np.mean([t.scores[name] for t in ok])) if ok else math.nan
        row.update(valid_trials=len(ok), trials_ok=len(ok),
                   trials_unparsed=sum(t.status == "unparsed" for t in found),
                   trials_error=sum(t.status == "error" for t in found))
        trial_rows += [{"variant": row["variant"], "key": row["key"], "id": t.request_id, "trial": t.trial,
                        "status": t.status, "answer": t.answer, **{n: t.scores.get(n, math.nan) for n in DIMENSIONS}}
                       for t in found]
    examples = pd.DataFrame(rows)
    examples.to_parquet(out / "examples.parquet", index=False)
    pd.DataFrame(trial_rows, columns=["variant", "key", "id", "trial", "status", "answer", *DIMENSIONS]).to_parquet(
        out / "trials.parquet", index=False)
    table = {"reviewer": f"{cfg.vlm.backend}:{cfg.vlm.model}", "protocol": cfg.protocol.model_dump(mode="json"),
             "lpips": note, "variants": {v: summarise_variant(examples[examples["variant"] == v], cfg, note)
                                         for v in dict.fromkeys(examples["variant"])}}
    (out / "table.json").write_text(json.dumps(table, indent=2))
    (out / "table.md").write_text(markdown_table(table))
    message = unreviewed_message(examples, out)
    if message is not None:
        raise UnreviewedExamples(message, table)
    return table
