"""The run summary: OUT/report.md and OUT/metrics.json (the same facts; the flow also shows it as an artifact)."""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from schemas.manifest import ManifestRow
from engine.run import RunContext, atomic_write_bytes, atomic_write_json
from tasks.publish.pack import published_shards


@dataclass
class RunStats:
    """What the flow measured while it ran."""

    wall_s: float = 0.0
    clips_processed: int = 0  # inputs worked on in this invocation
    clips_reused: int = 0  # inputs whose ledger entry was reused (resume)
    stage_seconds: dict[str, float] = field(default_factory=dict)
    redo_reasons: dict[str, str] = field(default_factory=dict)
    source_stats: dict[str, Any] = field(default_factory=dict)
    new_shards: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    previews: list[str] = field(default_factory=list)
    pipeline: dict[str, Any] = field(default_factory=dict)  # engine.metrics.PipelineMetrics.summary()
    cut_model_fraction: dict[str, float] = field(default_factory=dict)  # clip id -> frames TransNetV2 scored
    cut_fallbacks: dict[str, str] = field(default_factory=dict)  # clip id -> why the configured detector was not used

    def add(self, result: Any) -> None:
        """Account one finished clip (a tasks.samples.ClipResult)."""
        self.clips_processed += 1
        for stage, seconds in result.timings.items():
            self.stage_seconds[stage] = self.stage_seconds.get(stage, 0.0) + seconds
        if getattr(result, "cut_model_fraction", None) is not None:
            self.cut_model_fraction[result.clip_id] = round(result.cut_model_fraction, 4)
        if getattr(result, "cut_detector_fallback", None):
            self.cut_fallbacks[result.clip_id] = result.cut_detector_fallback

    def finish(self, started: float, new_shards: list[str], config: Any) -> None:
        import time

        self.wall_s = time.perf_counter() - started
        self.new_shards = new_shards
        if self.cut_fallbacks:
            reasons = Counter(self.cut_fallbacks.values())
            self.notes.append(f"Scene cuts: the configured detector ({config.prefilter.scene_cut.detector}) was not "
                              f"used for {len(self.cut_fallbacks)} source(s); prefilter.scene_cut.fallback "
                              f"({config.prefilter.scene_cut.fallback}) decided instead: "
                              + "; ".join(f"{why} ({n})" for why, n in reasons.most_common()))
        if not config.vlm.enabled:
            self.notes.append("The VLM judge is off (offline profile: random weights cannot judge); the motion "
                              "and scene-cut pre-filter decided acceptance. Use configs/gpu.yaml for Qwen3-VL. "
                              "Samples carry a caption (txt) only where the source has one (synthetic ground truth, "
                              "a dataset's own); the others have none, and meta.caption_note says why.")


def _table(title: str, counts: Counter, header: str = "count") -> list[str]:
    lines = [f"### {title}", "", f"| {title.split(' by ')[-1]} | {header} |", "|---|---:|"]
    lines += [f"| {k} | {v} |" for k, v in sorted(counts.items(), key=lambda kv: (-kv[1], str(kv[0])))]
    return lines + [""]


def vlm_audit(run: RunContext, rows: list[ManifestRow], per_stratum: int = 3) -> list[dict[str, Any]]:
    """A stratified sample of the VLM's decisions: up to ``per_stratum`` windows per (decision, reason)."""
    strata: dict[tuple[str, str], list[ManifestRow]] = {}
    for row in sorted((r for r in rows if r.vlm_decision), key=lambda r: (r.clip_id, r.window or 0)):
        strata.setdefault((row.vlm_decision or "", row.vlm_reason or ""), []).append(row)
    audit = []
    for (decision, reason), members in sorted(strata.items()):
        for row in members[:per_stratum]:
            thumb = Path("previews") / "vlm" / f"{row.clip_id}-w{(row.window or 0):02d}.jpg"
            audit.append({"decision": decision, "reason": reason or "-", "clip_id": row.clip_id, "window": row.window,
                          "event_type": row.event_type, "confidence": row.scores.get("vlm_confidence"),
                          "spatial": row.scores.get("vlm_spatial_occupancy"),
                          "temporal": row.scores.get("vlm_temporal_occupancy"),
                          "says": (row.caption or row.error or "")[:160].replace("|", "/").replace("\n", " "),
                          "thumbnail": str(thumb) if (run.out / thumb).exists() else None,
                          "stratum_size": len(members)})
    return audit


def summarise(run: RunContext, rows: list[ManifestRow], stats: RunStats) -> dict[str, Any]:
    accepted = [r for r in rows if r.status == "accepted"]
    processed = max(stats.clips_processed, 1)
    return {
        "run_id": run.run_id, "out": run.location, "config_hash": run.config.config_hash, "clip_hash": run.clip_hash,
        "inputs": len({r.clip_id for r in rows}), "rows": len(rows),
        "status": dict(Counter(r.status for r in rows)),
        "reasons": dict(Counter(f"{r.status}: {r.reason}" for r in rows if r.status != "accepted")),
        "event_groups": dict(Counter(r.event_group or "unknown" for r in accepted)),
        "interruptions": dict(Counter(r.interruption or "none" for r in accepted)),
        "sources": dict(Counter(r.source for r in accepted)),
        "licenses": dict(Counter(f"{r.source} / {r.license or 'unknown'}" for r in accepted)),
        "shards": published_shards(run),
        "wall_s": round(stats.wall_s, 2), "clips_processed": stats.clips_processed, "clips_reused": stats.clips_reused,
        "clips_per_s": round(stats.clips_processed / stats.wall_s, 4) if stats.wall_s else None,
        "stage_seconds_per_clip": {k: round(v / processed, 3) for k, v in sorted(stats.stage_seconds.items())},
        # Share of the executor's wall time each stage's workers were busy: the busiest stage is the bottleneck.
        "stage_busy_fraction": {k: v["busy_fraction"] for k, v in (stats.pipeline.get("stages") or {}).items()},
        "pipeline": stats.pipeline,
        "scene_cuts": {"model_frame_fraction": round(sum(stats.cut_model_fraction.values())
                                                     / len(stats.cut_model_fraction), 4)
                       if stats.cut_model_fraction else None,
                       "per_source": stats.cut_model_fraction, "fallbacks": stats.cut_fallbacks},
        "redo_reasons": stats.redo_reasons, "source_stats": stats.source_stats, "notes": stats.notes,
        "previews": stats.previews, "vlm_audit": vlm_audit(run, rows),
    }


def _stage_table(summary: dict[str, Any]) -> list[str]:
    pipeline = summary.get("pipeline") or {}
    stages = pipeline.get("stages") or {}
    lines = ["### Stages", ""]
    if pipeline.get("bottleneck"):
        lines += [f"Executor: {pipeline['backend']}, {pipeline['wall_s']} s. Bottleneck: **{pipeline['bottleneck']}** "
                  "(the most busy seconds per worker).", ""]
    lines += ["| stage | workers | items (passed through) | s/item | items/s | busy fraction | queue mean / max |",
              "|---|---:|---:|---:|---:|---:|---|"]
    lines += [f"| {name} | {m['workers']} | {m['items']} ({m.get('passed', 0)}) | {m['seconds_per_item']} | "
              f"{m['items_per_s']} | {m['busy_fraction']} | {m['queue_mean']} / {m['queue_max']} |"
              for name, m in stages.items()]
    return lines + [""]


def render_markdown(summary: dict[str, Any]) -> str:
    status = Counter(summary["status"])
    lines = [f"# remind-curate run {summary['run_id']}", "",
             f"Output: `{summary['out']}`  ·  config hash `{summary['config_hash']}`", ""]
    if not status.get("accepted"):
        lines += ["> **No sample was accepted.** Check the reasons below before using this output.", ""]
    lines += [f"- inputs: {summary['inputs']}, candidate rows: {summary['rows']}",
              f"- processed now: {summary['clips_processed']} clips in {summary['wall_s']} s "
              f"({summary['clips_per_s']} clips/s); reused from an earlier attempt: {summary['clips_reused']}"]
    cuts = summary.get("scene_cuts") or {}
    if cuts.get("model_frame_fraction") is not None:
        lines += [f"- scene cuts: TransNetV2 scored {cuts['model_frame_fraction']:.0%} of the frames of "
                  f"{len(cuts['per_source'])} sources (the cheap screen cleared the rest; per source in metrics.json)"]
    lines += [""]
    for note in summary["notes"]:
        lines += [f"> {note}", ""]
    lines += _table("Rows by status", status)
    if summary["reasons"]:
        lines += _table("Rejected and failed by reason", Counter(summary["reasons"]))
    lines += _table("Accepted by event group", Counter(summary["event_groups"]))
    lines += _table("Accepted by interruption", Counter(summary["interruptions"]))
    lines += _table("Accepted by source", Counter(summary["sources"]))
    lines += _table("Accepted by source / license", Counter(summary["licenses"]))
    lines += ["### Shards", "", "| shard | MiB |", "|---|---:|"]
    lines += [f"| {name} | {size / 2**20:.2f} |" for name, size in summary["shards"].items()] + [""]
    lines += _stage_table(summary)
    if summary["source_stats"]:
        lines += ["### Source", "", "```", *[f"{k}: {v}" for k, v in summary["source_stats"].items()], "```", ""]
    if summary["redo_reasons"]:
        lines += ["### Recomputed cached clips", ""] + [f"- {k}: {v}" for k, v in summary["redo_reasons"].items()]
        lines += [""]
    if summary["vlm_audit"]:
        lines += ["### VLM audit (stratified by decision and reason)", "",
                  "| frame | decision | reason | event | conf | spatial | temporal | the VLM said |",
                  "|---|---|---|---|---:|---:|---:|---|"]
        for a in summary["vlm_audit"]:
            image = f"![{a['clip_id']}]({a['thumbnail']})" if a["thumbnail"] else "-"
            lines.append(f"| {image} | {a['decision']} ({a['stratum_size']}) | {a['reason']} | {a['event_type'] or '-'}"
                         f" | {a['confidence'] if a['confidence'] is not None else '-'} | "
                         f"{a['spatial'] if a['spatial'] is not None else '-'} | "
                         f"{a['temporal'] if a['temporal'] is not None else '-'} | {a['says']} |")
        lines += [""]
    if summary["previews"]:
        lines += ["### Previews", ""] + [f"![{Path(p).stem}]({p})" for p in summary["previews"]] + [""]
    lines += ["Outputs: `shards/*.tar` (WebDataset), `manifest.parquet`, `metrics.json`, `config.yaml`, `previews/`."]
    return "\n".join(lines) + "\n"


def write_report(run: RunContext, rows: list[ManifestRow], stats: RunStats) -> dict[str, Any]:
    summary = summarise(run, rows, stats)
    markdown = render_markdown(summary)
    atomic_write_bytes(run.out / "report.md", markdown.encode(), run.tmp)
    atomic_write_json(run.out / "metrics.json", summary)
    return summary
