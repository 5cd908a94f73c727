"""The pre-filter against a person's labels on real footage (tests/data/real, see SOURCES.md and labels.yaml).

    python -m benchmarks.prefilter                      # every labelled clip, default config (what a new user runs)
    python -m benchmarks.prefilter --clips box.mp4 cup.mp4 --config configs/offline.yaml
    python -m benchmarks.prefilter --calibrate-screen   # the cascade's screen against full TransNetV2 scans

Each clip goes through the pipeline's own stages with the default config (decode once, scene cuts, windows,
motion/light/weather, cameras); the scene-cut detectors are also run side by side on the same decoded frames.
Printed (markdown):
- keep: windows the person keeps that the pipeline keeps (recall) and the other way round (precision); windows of
  montages, near-static scenes and too-short clips the pipeline accepts (should be 0);
- per stage: precision / recall of the stage's rejections against the windows the person rejects for that
  stage's reasons;
- per detector (TransNetV2 as the default cascade and as a full scan, PySceneDetect adaptive / content; with and
  without the lighting check): shot boundary precision / recall, the share of frames TransNetV2 scored (a detection matches a labelled boundary within 2 frames; soft transitions as
  spans) and window-level scene_cut precision / recall;
- the confusion of the person's label (keep / reason) against the pipeline's outcome.
"""
from __future__ import annotations

import argparse
import sys
import time
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path

import yaml

from schemas.config import Config, SceneCutConfig, load_config
from tasks.cameras import estimate_cameras
from tasks.decode import cut_windows, decode_source, detect_scene_cuts
from tasks.prefilter.cuts import Transition, boundary_frames, detect_transitions, same_scene_score
from tasks.prefilter.motion import measure_motion
from tasks.records import SourceItem
from tasks.clip import Clip

ROOT = Path(__file__).resolve().parents[1]
LABELS = ROOT / "tests" / "data" / "real" / "labels.yaml"
STAGE_REASONS = {
    "cut-windows": {"scene_cut", "too_short", "no_cut_free_window"},
    "measure-motion": {"static_scene", "tiny_motion", "brief_motion", "global_change"},
    "estimate-cameras": {"geometry_nonfinite", "geometry_not_orthonormal", "geometry_low_confidence",
                         "geometry_implausible_jump", "geometry_error"},
}
NEVER_ACCEPT = ("montage", "near_static", "too_short")
TOLERANCE = 2  # frames between a detected and a labelled boundary


@dataclass(frozen=True)
class WindowLabel:
    clip: str
    start: int | None  # None: the whole clip (too short for a window)
    keep: bool
    reasons: tuple[str, ...]  # acceptable reason codes when rejected; the first is the main one
    category: tuple[str, ...]

    @property
    def label(self) -> str:
        return "keep" if self.keep else self.reasons[0]


def load_labels(path: Path = LABELS) -> dict:
    return yaml.safe_load(path.read_text())


def window_labels(labels: dict, clips: list[str] | None = None) -> list[WindowLabel]:
    out = []
    for name, clip in labels["clips"].items():
        if clips and name not in clips:
            continue
        category = tuple(clip.get("category", []))
        if clip.get("clip_reject"):
            out.append(WindowLabel(name, None, False, (clip["clip_reject"],), category))
            continue
        for start, verdict in clip["windows"].items():
            keep = verdict == "keep"
            out.append(WindowLabel(name, int(start), keep, () if keep else tuple(verdict), category))
    return out


def labelled_boundaries(clip: dict) -> list[tuple[int, int]]:
    """Labelled boundaries as frame spans: a cut at f is [f-1, f]; a soft transition its span."""
    spans = []
    for b in clip.get("boundaries", []):
        spans.append(tuple(b["span"]) if "span" in b else (b["frame"] - 1, b["frame"]))
    return spans


def match_boundaries(found: list[Transition], truth: list[tuple[int, int]]) -> tuple[int, int, int]:
    """(true positives, false positives, false negatives) of detected transitions against labelled spans."""
    def near(t: Transition, span: tuple[int, int]) -> bool:
        return t.start <= span[1] + TOLERANCE and span[0] - TOLERANCE <= t.end + 1

    hit = {i for i, span in enumerate(truth) if any(near(t, span) for t in found)}
    false_pos = sum(1 for t in found if not any(near(t, span) for span in truth))
    return len(hit), false_pos, len(truth) - len(hit)


def run_pipeline(path: Path, config: Config, detectors: dict[str, tuple[SceneCutConfig, str]]
                 ) -> tuple[dict, dict, int, dict]:
    """Pipeline outcome per window start ({start|None: 'accepted' | reason}), each detector's transitions on the
    same decoded frames (with and without the lighting check), how many frames were decoded, and the frames each
    learned detector scored."""
    clip = Clip(SourceItem(clip_id=f"real-{path.stem}", source="local", uri=str(path), path=str(path)))
    clip = decode_source(clip, config)
    clip = detect_scene_cuts(clip, config)
    frames = clip.frames
    found, scored = {}, {}
    if frames is not None:  # each detector once, raw; then the lighting check as the pipeline applies it
        for name, (cut_config, scan) in detectors.items():
            raw = detect_transitions(frames, float(config.normalise.fps),
                                     cut_config.model_copy(update={"same_scene_ncc": 1.0}), scan)
            scored[name] = raw.model_frames
            found[f"{name} (no lighting check)"] = raw.transitions
            found[name] = [t for t in raw.transitions
                           if same_scene_score(frames, t) < cut_config.same_scene_ncc]
    n = 0 if frames is None else len(frames)
    del frames
    clip = cut_windows(clip, config)
    for stage in (measure_motion, estimate_cameras):
        clip = stage(clip, config)
    fps = config.normalise.fps
    outcome: dict[int | None, str] = {}
    for o in clip.outcomes:
        start = None if o.window is None else round(o.span_s[0] * fps)
        outcome[start] = o.reason if o.status == "rejected" else f"failed:{o.reason}"
    for w in clip.windows:
        outcome[w.start_frame] = "accepted"
    return outcome, found, n, scored


def ratio(num: int, den: int) -> str:
    return f"{num / den:.2f} ({num}/{den})" if den else "n/a (0/0)"


def evaluate(clips: list[str] | None = None, config: Config | None = None) -> dict:
    config = config or Config()
    labels = load_labels()
    base = config.prefilter.scene_cut
    transnet = base.model_copy(update={"detector": "transnetv2"})
    detectors = {"transnetv2": (transnet, "cascade"), "transnetv2 full scan": (transnet, "full"),
                 "adaptive": (base.model_copy(update={"detector": "adaptive", "threshold": 3.0}), "cascade"),
                 "content": (base.model_copy(update={"detector": "content", "threshold": 27.0}), "cascade")}
    rows = window_labels(labels, clips)
    outcomes, boundary = {}, defaultdict(lambda: [0, 0, 0])
    window_cut = defaultdict(lambda: [0, 0, 0])  # tp, fp, fn of windows flagged scene_cut
    seconds, model_frames = {}, defaultdict(lambda: [0, 0])  # detector -> frames scored, frames
    for name in dict.fromkeys(r.clip for r in rows):
        started = time.perf_counter()
        outcome, found, n, scored = run_pipeline(LABELS.parent / name, config, detectors)
        for det, count in scored.items():
            if count is not None:
                model_frames[det][0] += count
                model_frames[det][1] += n
        seconds[name] = time.perf_counter() - started
        print(f"{name}: {dict(sorted(outcome.items(), key=str))} ({seconds[name]:.0f} s)", file=sys.stderr, flush=True)
        outcomes[name] = outcome
        truth = [s for s in labelled_boundaries(labels["clips"][name]) if s[1] < n]
        for det, transitions in found.items():
            tp, fp, fn = match_boundaries(transitions, truth)
            for i, v in enumerate((tp, fp, fn)):
                boundary[det][i] += v
            cuts = boundary_frames(transitions, n)
            for r in rows:
                if r.clip != name or r.start is None:
                    continue
                flagged = any(r.start < c <= r.start + config.normalise.num_frames - 1 for c in cuts)
                is_cut = not r.keep and r.reasons[0] == "scene_cut"
                window_cut[det][0] += flagged and is_cut
                window_cut[det][1] += flagged and not is_cut
                window_cut[det][2] += is_cut and not flagged
    got = {r: outcomes[r.clip].get(r.start, "missing") for r in rows}
    return {"rows": rows, "got": got, "boundary": dict(boundary), "window_cut": dict(window_cut), "seconds": seconds,
            "model_frames": dict(model_frames)}


def summarise(result: dict) -> dict[str, float]:
    rows, got = result["rows"], result["got"]
    keep = [r for r in rows if r.keep]
    kept = [r for r in rows if got[r] == "accepted"]
    never = [r for r in rows if any(c in NEVER_ACCEPT for c in r.category)]
    return {"keep_recall": sum(got[r] == "accepted" for r in keep) / max(1, len(keep)),
            "keep_precision": sum(r.keep for r in kept) / max(1, len(kept)),
            "never_accept_accepted": float(sum(got[r] == "accepted" for r in never)),
            "reason_agreement": sum((got[r] in r.reasons) or (r.keep and got[r] == "accepted") for r in rows)
            / max(1, len(rows))}


def report(result: dict) -> str:
    rows, got = result["rows"], result["got"]
    s = summarise(result)
    keep = [r for r in rows if r.keep]
    kept = [r for r in rows if got[r] == "accepted"]
    lines = ["| measure | value |", "|---|---|",
             f"| windows a person keeps, kept | {ratio(sum(got[r] == 'accepted' for r in keep), len(keep))} |",
             f"| windows kept that a person keeps | {ratio(sum(r.keep for r in kept), len(kept))} |"]
    for cat in NEVER_ACCEPT:
        members = [r for r in rows if cat in r.category]
        lines.append(f"| {cat} windows accepted | {sum(got[r] == 'accepted' for r in members)} of {len(members)} |")
    lines.append(f"| reason agreement (keep or an acceptable reason) | {s['reason_agreement']:.2f} |")
    lines += ["", "| stage | rejections precision | recall |", "|---|---|---|"]
    for stage, reasons in STAGE_REASONS.items():
        pred = [r for r in rows if got[r] in reasons]
        actual = [r for r in rows if not r.keep and r.reasons[0] in reasons]
        both = [r for r in pred if r in actual]
        lines.append(f"| {stage} | {ratio(len(both), len(pred))} | {ratio(len(both), len(actual))} |")
    lines += ["", "| detector | boundary precision | boundary recall | scene_cut window precision | recall | "
              "frames TransNetV2 scored |", "|---|---|---|---|---|---|"]
    for det, (tp, fp, fn) in result["boundary"].items():
        wtp, wfp, wfn = result["window_cut"][det]
        seen = result["model_frames"].get(det.removesuffix(" (no lighting check)"))
        lines.append(f"| {det} | {ratio(tp, tp + fp)} | {ratio(tp, tp + fn)} | {ratio(wtp, wtp + wfp)} | "
                     f"{ratio(wtp, wtp + wfn)} | {ratio(*seen) if seen else '-'} |")
    confusion = Counter((r.label, got[r]) for r in rows)
    columns = sorted({g for _, g in confusion})
    lines += ["", "| person \\ pipeline | " + " | ".join(columns) + " |", "|---" * (len(columns) + 1) + "|"]
    for label in sorted({lab for lab, _ in confusion}):
        lines.append(f"| {label} | " + " | ".join(str(confusion.get((label, c), "")) for c in columns) + " |")
    lines += ["", "| clip | window | person | pipeline |", "|---|---|---|---|"]
    lines += [f"| {r.clip} | {r.start} | {r.label} | {got[r]} |" for r in rows]
    return "\n".join(lines)


def calibrate_screen() -> str:
    """The cascade's screen against full TransNetV2 scans: for each statistic, the smallest value it reaches at a
    transition the full scan reports (over the frames the screen would mark for it), on every labelled clip and
    every edited case; the thresholds in tasks/prefilter/cut_screen.py are half of these. Also each statistic's
    spread over all frames (the background a threshold has to sit above to save work)."""
    import numpy as np

    from tasks.prefilter.cut_screen import MARGIN, SPANS, THRESHOLDS, screen_statistics
    from tasks.prefilter.transnet import TransNetV2Detector, _runs, downscale
    from tests.prefilter.edited_footage import CASES, decoded

    detector = TransNetV2Detector(threshold=Config().prefilter.scene_cut.transnet_threshold, threads=1)
    lowest = {name: (np.inf, "") for name in SPANS}
    background: dict[str, list] = defaultdict(list)
    for case in [*load_labels()["clips"], *CASES]:
        frames = CASES[case]() if case in CASES else decoded(case, 10_000)
        small = downscale(frames)
        stats = screen_statistics(small)
        for start, end in _runs(detector.probabilities(frames) > detector.threshold):
            if start == 0 or end == len(frames) - 1:  # no shot on one side: never a transition (detect drops it)
                continue
            for name, values in stats.items():
                peak = float(values[max(0, start - MARGIN):end + SPANS[name] + MARGIN + 1].max())
                lowest[name] = min(lowest[name], (peak, f"{case} {start}-{end}"))
        for name, values in stats.items():
            background[name].append(values)
        print(f"calibrated on {case}", file=sys.stderr, flush=True)
    lines = ["| statistic | lowest at a full-scan transition (where) | threshold | margin | all frames: median / 95th "
             "/ 99th percentile |", "|---|---|---|---|---|"]
    for name, (value, where) in lowest.items():
        spread = np.percentile(np.concatenate(background[name]), [50, 95, 99])
        lines.append(f"| {name} | {value:.3f} ({where}) | {THRESHOLDS[name]} | {value / THRESHOLDS[name]:.2f}x | "
                     + " / ".join(f"{v:.3f}" for v in spread) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clips", nargs="*", help="labelled file names (default: all)")
    parser.add_argument("--config", type=Path, help="a config file (default: the built-in defaults)")
    parser.add_argument("--calibrate-screen", action="store_true", help="only the scene-cut screen's calibration "
                        "against full TransNetV2 scans (tasks/prefilter/cut_screen.py)")
    args = parser.parse_args()
    if args.calibrate_screen:
        print(calibrate_screen())
        return
    config = load_config(args.config) if args.config else Config()
    started = time.perf_counter()
    result = evaluate(args.clips, config)
    print(report(result))
    print(f"\n{len(result['seconds'])} clips in {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
