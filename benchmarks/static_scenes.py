"""Near-static scenes: the two distributions behind ``prefilter.motion.min_dynamic_extent``, and where it sits.

    python -m benchmarks.static_scenes                     # labelled real windows + the synthetic families
    python -m benchmarks.static_scenes --no-synthetic      # real footage only (about 15 s)

Every labelled real window of tests/data/real (montages and too-short clips left out: other stages turn them down)
is measured by the motion stage's own ``measure`` with the default config. Its dynamic extent (the larger of the
part of the frame that moves at a time and the part that ends changed, ``tasks.prefilter.scene_change``) goes in
one of two distributions: windows a person keeps, windows a person turns down as near-static (static_scene or
tiny_motion). The procedural synthetic families (each an event the pipeline must keep) join the kept ones.

The extent rule only decides windows that reach it (something moves and the dynamic region is not tiny: the tests
before it) and that no light, weather or texture channel passes anyway. The others are shown too, on rows of
their own: kept ones that a photometric channel passes whatever their extent (foliage in wind, a lamp switched
off, a hand's shadow), and near-static ones already turned down as static_scene (nothing moves) or tiny_motion. The
suggested threshold is the geometric mean of the largest near-static extent and the smallest kept one among the
windows that reach the rule (the middle of the gap on a log scale); it is printed beside the configured value,
with both distributions drawn on one log axis.
"""
from __future__ import annotations

import argparse
import math
from dataclasses import dataclass

from benchmarks.prefilter import LABELS, load_labels, window_labels
from schemas.config import Config, MotionConfig, SyntheticConfig
from tasks.prefilter.motion import MotionStats, geometric_verdict, measure, photometric_channels
from tasks.video_io import decode_normalised

NEAR_STATIC = {"static_scene", "tiny_motion"}
AXIS = (1e-4, 1.0)
WIDTH = 72


@dataclass
class Point:
    name: str
    group: str  # kept | near_static
    reaches: bool  # the extent rule decides it: the tests before it pass, and no light/weather/texture channel does
    active: float
    lasting: float
    extent: float
    channels: list[str]


def _point(name: str, group: str, stats: MotionStats, motion: MotionConfig) -> Point:
    before = motion.model_copy(update={"min_dynamic_extent": 0.0, "min_temporal_occupancy": 0.0,
                                       "max_spatial_occupancy": 1.0})  # the tests that come after the rule
    channels = photometric_channels(stats, motion)
    reaches = geometric_verdict(stats, before) is None and not channels
    return Point(name, group, reaches, stats.mean_active_fraction, stats.lasting_change, stats.dynamic_extent,
                 channels)


def real_points(config: Config) -> list[Point]:
    motion, points, frames_of = config.prefilter.motion, [], {}
    for row in window_labels(load_labels()):
        if row.start is None or any(c in row.category for c in ("montage", "too_short")):
            continue
        if not row.keep and row.reasons[0] not in NEAR_STATIC:
            continue
        if row.clip not in frames_of:
            frames_of = {row.clip: decode_normalised(LABELS.parent / row.clip, config.normalise.fps, 480, 832, 60.0,
                                                     120.0, 2 * config.normalise.num_frames).frames}
        frames = frames_of[row.clip][row.start:row.start + config.normalise.num_frames]
        if len(frames) < config.normalise.num_frames:
            continue
        stats = measure(frames, motion)
        points.append(_point(f"{row.clip}@{row.start}", "kept" if row.keep else "near_static", stats, motion))
    return points


def synthetic_points(config: Config) -> list[Point]:
    from tasks.sources.synthetic import render_synthetic_clip

    points = []
    for index in range(15):  # every family x trajectory of the generator
        clip = render_synthetic_clip(index, SyntheticConfig(seed=0))
        stats = measure(clip.frames, config.prefilter.motion)
        points.append(_point(f"synthetic-{index} ({clip.trajectory})", "kept", stats, config.prefilter.motion))
    return points


def _column(value: float) -> int:
    lo, hi = (math.log10(v) for v in AXIS)
    x = (math.log10(min(max(value, AXIS[0]), AXIS[1])) - lo) / (hi - lo)
    return min(WIDTH - 1, int(x * WIDTH))


def plot(points: list[Point], threshold: float, suggested: float) -> str:
    """Both distributions on one log axis: one row per group, a digit per column = how many windows fall there."""
    lines = [f"dynamic extent, log axis {AXIS[0]:g} .. {AXIS[1]:g} (<= {AXIS[0]:g} drawn at the left edge)"]
    for group, reaches, label in (("kept", True, "kept            "), ("near_static", True, "near-static     "),
                                  ("kept", False, "kept (light/tx) "), ("near_static", False, "near-st. (other)")):
        counts = [0] * WIDTH
        for p in points:
            if p.group == group and p.reaches == reaches:
                counts[_column(p.extent)] += 1
        lines.append(f"{label} |" + "".join("." if c == 0 else str(min(c, 9)) for c in counts) + "|")
    marks = [" "] * WIDTH
    marks[_column(suggested)] = "^"
    marks[_column(threshold)] = "T" if _column(threshold) != _column(suggested) else "*"
    lines.append(" " * 18 + "".join(marks) + "  (T configured, ^ suggested, * both)")
    ticks = [" "] * (WIDTH + 8)
    for value in (1e-4, 1e-3, 1e-2, 1e-1):
        text = f"{value:g}"
        col = _column(value)
        ticks[col:col + len(text)] = list(text)
    lines.append(" " * 18 + "".join(ticks).rstrip())
    return "\n".join(lines)


def report(points: list[Point], threshold: float) -> tuple[str, float]:
    kept = [p.extent for p in points if p.group == "kept" and p.reaches]
    still = [p.extent for p in points if p.group == "near_static" and p.reaches]
    suggested = math.sqrt(max(max(still), 1e-6) * min(kept)) if kept and still else float("nan")
    lines = ["| window | person | reaches the rule | moves at a time | ends changed | extent | motion stage |",
             "|---|---|---|---|---|---|---|"]
    for p in sorted(points, key=lambda q: (q.group, not q.reaches, q.extent)):
        if p.channels:
            verdict = f"{'/'.join(p.channels)} passes it"
        else:
            verdict = ("passes" if p.extent >= threshold else "static_scene") if p.reaches else "an earlier test"
        lines.append(f"| {p.name} | {p.group} | {'yes' if p.reaches else 'no'} | {p.active:.4f} | {p.lasting:.4f} | "
                     f"{p.extent:.4f} | {verdict} |")
    lines += ["", f"kept (reaching the rule): {len(kept)} windows, extent min {min(kept):.4f}, median "
              f"{sorted(kept)[len(kept) // 2]:.4f}",
              f"near-static (reaching the rule): {len(still)} windows, extent max {max(still):.4f}, median "
              f"{sorted(still)[len(still) // 2]:.4f}",
              f"gap: {max(still):.4f} .. {min(kept):.4f}; suggested threshold (geometric middle) {suggested:.4f}; "
              f"configured min_dynamic_extent {threshold}",
              "", plot(points, threshold, suggested)]
    return "\n".join(lines), suggested


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--no-synthetic", action="store_true", help="leave the synthetic families out")
    args = parser.parse_args()
    config = Config()
    points = real_points(config) + ([] if args.no_synthetic else synthetic_points(config))
    text, _ = report(points, config.prefilter.motion.min_dynamic_extent)
    print(text)


if __name__ == "__main__":
    main()
