"""SIMULATION at scale on a local multi-node Ray cluster: driver memory, per-node tasks, recovery after a node loss.

    .venv/bin/python benchmarks/cluster.py                       # 3 nodes, 10,000 sources, one node lost mid-run
    .venv/bin/python benchmarks/cluster.py --sources 2000 --no-loss

A head and ``--workers`` worker nodes (``ray.cluster_utils.Cluster``, each with its own scratch root) run a pipeline
of our stage contract through engine.executor's Ray backend (engine/ray_data.py). Its stages stand in for the
ingest's: each SLEEPS for its measured per-source cost on this machine (``COSTS``, seconds per source from
metrics.json of a real ingest), divided by ``--scale``; no video is decoded. One worker node is killed without
grace once half the sources are out (``--no-loss``: none), and a fresh node is added at the same moment.

Printed: nodes, sources, wall time, tasks per node (from metrics.json's ``pipeline.nodes``), the driver's resident
memory after 1k and after all sources streamed out, the recovery time (from the loss until the output rate is
back to 90% of its rate before the loss), and the time to list 10k finished ledger entries in a run folder (what a
resumed run does first: engine.ledger.split_finished).
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine.stage import Pipeline, ProcessingStage, Resources  # noqa: E402

# Seconds per source of the ingest's stages on this 2-core machine (synthetic clips, one window, CPU).
COSTS = {"sim-decode": 1.9, "sim-cuts": 0.4, "sim-motion": 2.6, "sim-cameras": 1.2, "sim-write": 6.0}
SETTINGS: dict = {"scale": 2000.0, "batch": 50}


def _rss_mib() -> float:
    with open("/proc/self/status") as handle:
        line = next(row for row in handle if row.startswith("VmRSS:"))
    return int(line.split()[1]) / 1024


class _Sleep(ProcessingStage[int, int]):
    input_type, output_type, resources = int, int, Resources(cpus=1.0)

    @classmethod
    def batch_size_for(cls, config) -> int:
        return SETTINGS["batch"]

    def process_batch(self, items: list[int]) -> list[int]:
        time.sleep(COSTS[self.name] / SETTINGS["scale"] * len(items))
        return items


def _stage(name: str, actor: bool = False) -> type[ProcessingStage]:
    body: dict = {"name": name, "__module__": __name__}
    if actor:  # a model stage: an actor pool, set up once per actor
        body["setup"] = lambda self: None
        body["workers_for"] = classmethod(lambda cls, config: 1)
    return type(name.title().replace("-", ""), (_Sleep,), body)


SIMULATION = Pipeline("cluster-simulation", (_stage("sim-decode"), _stage("sim-cuts", actor=True),
                                             _stage("sim-motion"), _stage("sim-cameras", actor=True),
                                             _stage("sim-write")),
                      on_failure=lambda failed, config, run: failed, record_id=str)


def _cluster(root: Path, workers: int):
    from ray.cluster_utils import Cluster

    from engine.runtime import configure_process
    from engine.store_s3 import SCRATCH_ENV

    configure_process()

    def args(name: str, cpus: int) -> dict:
        scratch = tempfile.mkdtemp(prefix=f"{name}-", dir=root)
        return dict(num_cpus=cpus, object_store_memory=300 << 20, include_dashboard=False,
                    env_vars={SCRATCH_ENV: scratch})

    cluster = Cluster(initialize_head=True, head_node_args=args("head", 2))
    nodes = [cluster.add_node(**args(f"w{i}", 2)) for i in range(workers)]
    return cluster, nodes, args


def _listing_seconds(root: Path, count: int) -> float:
    """engine.ledger.split_finished over ``count`` ledger entries written as a run writes them."""
    from engine.ledger import split_finished
    from engine.run import open_run
    from engine.store import LocalStore
    from schemas.config import Config
    from tasks.records import SourceItem

    out = root / "resume"
    run = open_run(out, Config())
    run.store = LocalStore(str(out), out)
    items = [SourceItem(f"synthetic-{i:06d}", "synthetic", f"synthetic:{i}") for i in range(count)]
    from engine.run import atomic_write_json

    for item in items:
        atomic_write_json(run.clips / f"{item.clip_id}.json", {"clip_id": item.clip_id, "clip_hash": run.clip_hash,
                                                               "rows": [], "checksums": {}, "member_checksums": {}})
    started = time.perf_counter()
    split_finished(items, run)
    seconds = time.perf_counter() - started
    run.release()
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sources", type=int, default=10_000)
    parser.add_argument("--workers", type=int, default=2, help="worker nodes besides the head")
    parser.add_argument("--scale", type=float, default=SETTINGS["scale"], help="stage costs divided by this")
    parser.add_argument("--batch", type=int, default=SETTINGS["batch"], help="sources per task")
    parser.add_argument("--no-loss", action="store_true", help="lose no node")
    args = parser.parse_args()
    SETTINGS.update(scale=args.scale, batch=args.batch)

    import ray

    from engine.executor import run_pipeline
    from schemas.config import Config

    root = Path(tempfile.mkdtemp(prefix="rc-bench-", dir="/tmp"))
    cluster, workers, node_args = _cluster(root, args.workers)
    try:
        config = Config.model_validate({"ray": {"enabled": True, "address": cluster.address}})
        run = SimpleNamespace(run_id="bench", out=root / "driver", store=None)
        execution = run_pipeline(range(args.sources), SIMULATION, config, run)
        started, out_times, memory = time.perf_counter(), [], {}
        lost_at = added = None
        for count, _ in enumerate(execution, start=1):
            out_times.append(time.perf_counter())
            if count in (1000, args.sources):
                memory[count] = _rss_mib()
            if not args.no_loss and lost_at is None and count >= args.sources // 2:
                added = cluster.add_node(**node_args("w-new", 2))
                cluster.remove_node(workers[0], allow_graceful=False)
                lost_at = time.perf_counter()
        wall = time.perf_counter() - started
        summary = execution.metrics.summary()
        print(f"nodes: 1 head + {args.workers} workers (2 logical CPUs each)"
              f"{'' if args.no_loss else ', one worker lost and one added at half-way'}")
        print(f"sources: {args.sources} (stage costs / {args.scale:g}), wall: {wall:.1f} s, "
              f"{args.sources / wall:.0f} sources/s")
        names = {cluster.head_node.node_id: "head"}
        if lost_at is not None:
            names[workers[0].node_id] = "lost worker"
        if added is not None:
            names[added.node_id] = "added worker"
        for node, info in (summary.get("nodes") or {}).items():
            print(f"  tasks on {names.get(node, 'worker')} {node[:8]}: {info['tasks']}")
        for count, mib in sorted(memory.items()):
            print(f"driver RSS after {count} sources: {mib:.0f} MiB")
        if lost_at is not None:
            before = [t for t in out_times if lost_at - 10 <= t < lost_at]
            rate = len(before) / 10 if before else 0.0
            after = [t for t in out_times if t >= lost_at]
            back = next((t for i, t in enumerate(after) if rate and
                         sum(1 for u in after[i:] if u < t + 2) / 2 >= 0.9 * rate), after[-1] if after else lost_at)
            print(f"recovery after the node loss: {back - lost_at:.1f} s (output rate back to 90% of "
                  f"{rate:.0f}/s)")
    finally:
        ray.shutdown()
        cluster.shutdown()
    print(f"resume: listing 10000 finished ledger entries took {_listing_seconds(root, 10_000):.2f} s")
    shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    os.environ.setdefault("RAY_DEDUP_LOGS", "1")
    main()
