"""Geometry backends against the synthetic source's exact cameras and depth.

    python -m benchmarks.geometry --clips 2                       # classical + a tiny random-weight DA3
    python -m benchmarks.geometry --clips 4 --da3-model /ckpt/da3-large --process-res 504

Per backend and trajectory: relative rotation error per consecutive frame pair (median and mean over all
pairs of all clips, degrees), ATE after Sim(3) alignment (mean over clips, scene units), depth abs-rel
(median-scaled), seconds per 81-frame clip, and the fraction of clips the quality gates accept.
Without --da3-model the DA3 rows come from a tiny RANDOM-WEIGHT model: they time the code path and mean
nothing about accuracy.
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterable

from schemas.cameras import hfov_deg
from schemas.config import GeometryConfig, SyntheticConfig
from schemas.constants import WIDTH
from tasks.geometry.backends import make_geometry_backend
from tasks.geometry.base import GeometryBackend
from tasks.geometry.evaluate import ate_rmse, depth_abs_rel, relative_rotation_errors
from tasks.sources.synthetic import SyntheticClip, clip_spec, render_synthetic_clip


def pick_clips(per_trajectory: int, trajectories: Iterable[str], config: SyntheticConfig) -> list[int]:
    """The first ``per_trajectory`` clip indices of each trajectory."""
    wanted = {t: per_trajectory for t in trajectories}
    out, index = [], 0
    while any(wanted.values()) and index < 10_000:
        traj = clip_spec(index, config)[1]
        if wanted.get(traj, 0) > 0:
            out.append(index)
            wanted[traj] -= 1
        index += 1
    return out


def evaluate_backend(label: str, backend: GeometryBackend, clips: list[SyntheticClip]) -> list[dict[str, object]]:
    """One table row per trajectory."""
    acc: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for clip in clips:
        t0 = time.perf_counter()
        est = backend.estimate(clip.frames)
        a = acc[clip.trajectory]
        a["seconds"].append(time.perf_counter() - t0)
        a["rre"].extend(relative_rotation_errors(est.camera_c2w, clip.camera_c2w).tolist())
        a["ate"].append(ate_rmse(est.camera_c2w, clip.camera_c2w))
        a["ok"].append(float(est.ok))
        if est.depth is not None:
            a["absrel"].append(depth_abs_rel(est.depth, clip.depth))
    rows = []
    for traj, a in sorted(acc.items()):
        rows.append({
            "backend": label, "trajectory": traj, "clips": len(a["ate"]),
            "rre_median": statistics.median(a["rre"]), "rre_mean": statistics.fmean(a["rre"]),
            "ate": statistics.fmean(a["ate"]),
            "absrel": statistics.fmean(a["absrel"]) if a["absrel"] else float("nan"),
            "s_per_clip": statistics.fmean(a["seconds"]), "ok": statistics.fmean(a["ok"]),
        })
    return rows


def print_table(rows: list[dict[str, object]]) -> None:
    head = f"{'backend':<28}{'trajectory':<12}{'clips':>6}{'RRE med':>9}{'RRE mean':>9}{'ATE':>8}{'absrel':>8}" \
           f"{'s/clip':>8}{'ok':>6}"
    print(head)
    print("-" * len(head))
    for r in rows:
        print(f"{r['backend']:<28}{r['trajectory']:<12}{r['clips']:>6}{r['rre_median']:>9.3f}{r['rre_mean']:>9.3f}"
              f"{r['ate']:>8.3f}{r['absrel']:>8.3f}{r['s_per_clip']:>8.2f}{r['ok']:>6.2f}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clips", type=int, default=2, help="clips per trajectory")
    parser.add_argument("--trajectories", default="static,pan,pan_return")
    parser.add_argument("--hfov", default="60,50,75", help="classical backend's assumed hfov values (degrees)")
    parser.add_argument("--da3-model", default="", help="DA3 checkpoint dir or hub id (default: tiny random)")
    parser.add_argument("--process-res", type=int, default=504)
    parser.add_argument("--subset-frames", type=int, default=0)
    parser.add_argument("--no-da3", action="store_true")
    args = parser.parse_args(argv)

    syn = SyntheticConfig()
    indices = pick_clips(args.clips, args.trajectories.split(","), syn)
    t0 = time.perf_counter()
    clips = [render_synthetic_clip(i, syn) for i in indices]
    print(f"rendered {len(clips)} synthetic clips in {time.perf_counter() - t0:.1f}s; "
          f"their hfov: {hfov_deg(clips[0].intrinsics[0], WIDTH):.1f} deg")
    rows = []
    for hfov in (float(v) for v in args.hfov.split(",") if v):
        backend = make_geometry_backend(GeometryConfig(backend="classical", assumed_hfov_deg=hfov))
        rows += evaluate_backend(f"classical hfov={hfov:g}", backend, clips)
    if not args.no_da3:
        with tempfile.TemporaryDirectory() as tmp:
            model = args.da3_model
            if not model:
                from tasks.geometry.da3 import build_tiny_da3

                model = str(build_tiny_da3(tmp))
            config = GeometryConfig(backend="da3", model=model, process_res=args.process_res,
                                    subset_frames=args.subset_frames, cross_check=False)
            label = f"da3 {'RANDOM tiny' if not args.da3_model else 'model'} k={args.subset_frames or 81}"
            rows += evaluate_backend(label, make_geometry_backend(config), clips)
    print_table(rows)
    if not args.no_da3 and not args.da3_model:
        print("NOTE: the DA3 rows use a tiny random-weight model: timings only; its errors mean nothing.")


if __name__ == "__main__":
    main()
