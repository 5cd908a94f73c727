"""Regenerate vs ingest on the same synthetic clips, in one process.

    python -m benchmarks.regenerate --clips 8
    python benchmarks/regenerate.py --clips 8 --mixture light_toggle,occluder,zoom --work /tmp/bench-regen --keep

Ingests ``synthetic:N`` with the default configuration, then regenerates that output with a different augment
mixture (default: light_toggle, occluder and zoom, so every regenerated sample has a degraded clip to encode, which
is the worst case for regenerate). Prints wall seconds of each flow, the speedup, and how many source reads, filter
calls (scene cuts, motion, VLM), geometry calls and H.264 encodes each made. The counts come from ``UpstreamProbe``:
counting wrappers installed at module level around the functions that do that work, so a call from any code path
in this process is seen, a stage's ``setup`` (model loading) included. The ingest column proves the probes fire;
regenerate's must be zero (exit 1 otherwise). Regenerate runs the ingest stages through the same executor after
the cache loader, the cached ones never started: its per-stage table (items, busy seconds) is printed too.
The Prefect server is started by a warm-up flow before timing, so neither flow pays for it.
"""
from __future__ import annotations

import argparse
import contextlib
import functools
import importlib
import os
import shutil
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

# (module, attribute, what a call counts as). Each attribute is looked up at call time by its callers.
PROBES: tuple[tuple[str, str, str], ...] = (
    ("tasks.sources.synthetic", "render_item", "source_reads"),  # decode_source imports it at call time
    ("tasks.decode", "decode_normalised", "source_reads"),
    ("tasks.video_io", "decode_normalised", "source_reads"),
    ("tasks.decode", "find_cuts", "filter_calls"),
    ("tasks.decode", "_detector", "filter_calls"),  # DetectSceneCuts.setup: the cut detector's weights
    ("tasks.prefilter.motion", "measure", "filter_calls"),
    ("tasks.judge", "shared_judge", "filter_calls"),
    ("tasks.vlm.judge", "judge_windows", "filter_calls"),
    ("tasks.cameras", "estimate_geometry", "geometry_calls"),
    ("tasks.geometry.stage", "estimate_geometry", "geometry_calls"),
    ("tasks.geometry.backends", "make_geometry_backend", "geometry_calls"),
    ("tasks.cameras", "make_geometry_backend", "geometry_calls"),
    ("tasks.cameras", "_backend", "geometry_calls"),  # EstimateCameras.setup and each window's estimate
    ("tasks.samples", "encode_h264", "encodes"),
    ("tasks.video_splice", "encode_h264", "encodes"),  # a degraded clip's changed GOPs (one encode per run of them)
)
CATEGORIES = ("source_reads", "filter_calls", "geometry_calls", "encodes")


class UpstreamProbe:
    """Counts calls of the upstream stages' work functions while installed (``with probe: ...``)."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self._saved: list[tuple[Any, str, Any]] = []

    def _wrap(self, fn: Callable[..., Any], category: str) -> Callable[..., Any]:
        @functools.wraps(fn)
        def counted(*args: Any, **kwargs: Any) -> Any:
            self.counts[category] += 1
            return fn(*args, **kwargs)

        counted.__probe_original__ = fn  # type: ignore[attr-defined]
        return counted

    def __enter__(self) -> "UpstreamProbe":
        for module_name, attr, category in PROBES:
            module = importlib.import_module(module_name)
            original = getattr(module, attr)
            self._saved.append((module, attr, original))
            setattr(module, attr, self._wrap(getattr(original, "__probe_original__", original), category))
        return self

    def __exit__(self, *exc: Any) -> None:
        for module, attr, original in reversed(self._saved):
            setattr(module, attr, original)
        self._saved.clear()

    def snapshot(self) -> dict[str, int]:
        return {c: int(self.counts[c]) for c in CATEGORIES}

    def reset(self) -> None:
        self.counts.clear()


@contextlib.contextmanager
def probed() -> Iterator[UpstreamProbe]:
    with UpstreamProbe() as probe:
        yield probe


def _warm_up(out: Path) -> float:
    """A one-clip ingest through the flow (Prefect's server and the stages' imports start here, untimed)."""
    from flows.ingest import ingest

    started = time.perf_counter()
    ingest(source="synthetic:1", out=str(out))
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clips", type=int, default=8)
    parser.add_argument("--mixture", default="light_toggle,occluder,zoom",
                        help="comma-separated families (equal weights) for the regenerate run")
    parser.add_argument("--work", help="output folder (default: a temporary folder, removed afterwards)")
    parser.add_argument("--keep", action="store_true", help="keep --work / the temporary folder")
    parser.add_argument("--no-validate", action="store_true", help="skip validating the regenerated shards")
    parser.add_argument("--workers", default="", help="executor workers of the regenerate run, e.g. build-graph=2")
    args = parser.parse_args(argv)

    work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="bench-regenerate-"))
    work.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("PREFECT_HOME", str(work / "prefect"))
    os.environ.setdefault("PREFECT_RESULTS_LOCAL_STORAGE_PATH", str(work / "prefect" / "results"))
    from engine.runtime import configure_process

    configure_process()
    import yaml

    from flows.ingest import ingest
    from flows.regenerate import regenerate
    from tasks.shards.validate import validate_path

    families = [f.strip() for f in args.mixture.split(",") if f.strip()]
    mixture = {k: (1.0 if k in families else 0.0)
               for k in ("none", "camera_loop", "light_toggle", "occluder", "zoom", "exit_entry")}
    override = work / "regenerate.yaml"
    workers = {name: int(n) for name, _, n in (w.partition("=") for w in args.workers.split(",") if w)}
    override.write_text(yaml.safe_dump({"augment": {"mixture": mixture}, "executor": {"workers": workers}}))
    src, dst = work / "ingest", work / "regenerate"
    shutil.rmtree(src, ignore_errors=True)
    shutil.rmtree(dst, ignore_errors=True)
    try:
        print(f"warm-up flow (starts the Prefect server, not timed): {_warm_up(work / 'warm-up'):.1f} s", flush=True)
        with probed() as probe:
            started = time.perf_counter()
            ingested = ingest(source=f"synthetic:{args.clips}", out=str(src))
            ingest_s = time.perf_counter() - started
            ingest_counts = probe.snapshot()
            probe.reset()
            started = time.perf_counter()
            regenerated = regenerate(source_out=str(src), out=str(dst), config_path=str(override))
            regen_s = time.perf_counter() - started
            regen_counts = probe.snapshot()
        report = None if args.no_validate else validate_path(dst)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)

    print(f"\n{args.clips} synthetic clips; ingest mixture: default (all six kinds); "
          f"regenerate mixture: {', '.join(families)}; regenerate executor workers: {workers or 'default'}")
    print(f"ingest:     {ingested['status']}  interruptions {ingested['interruptions']}")
    print(f"regenerate: {regenerated['status']}  interruptions {regenerated['interruptions']}")
    rows = [("wall s", f"{ingest_s:.1f}", f"{regen_s:.1f}"),
            ("source reads", ingest_counts["source_reads"], regen_counts["source_reads"]),
            ("filter calls", ingest_counts["filter_calls"], regen_counts["filter_calls"]),
            ("geometry calls", ingest_counts["geometry_calls"], regen_counts["geometry_calls"]),
            ("H.264 encodes", ingest_counts["encodes"], regen_counts["encodes"])]
    print("\n| | ingest | regenerate |\n|---|---:|---:|")
    for name, a, b in rows:
        print(f"| {name} | {a} | {b} |")
    print(f"\nspeedup (ingest s / regenerate s): {ingest_s / regen_s:.2f}x")
    print("\nregenerate, per stage (engine.executor; the cached stages are never started):\n"
          "| stage | items | busy s | busy fraction |\n|---|---:|---:|---:|")
    for name, m in (regenerated.get("pipeline") or {}).get("stages", {}).items():
        print(f"| {name} | {m['items']} | {m['busy_s']:.2f} | {m['busy_fraction']:.2f} |")
    if report is not None:
        print(f"validate regenerated output: {report.samples} samples in {report.shards} shards: "
              f"{'OK' if report.ok else f'FAILED ({len(report.problems)} problems)'}")
    if args.keep:
        print(f"outputs kept in {work}")
    upstream = {k: v for k, v in regen_counts.items() if k != "encodes" and v}
    if upstream:
        print(f"ERROR: regenerate made upstream calls: {upstream}", file=sys.stderr)
        return 1
    return 0 if report is None or report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
