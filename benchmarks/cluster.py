"""SIMULATION at scale on a local multi-node Ray cluster: driver memory, per-node tasks, recovery after a node loss;
ledger and manifest writes at growing sizes; listing a 10,000-source run's finished work on resume (local and S3).

    .venv/bin/python benchmarks/cluster.py                       # 3 nodes, 10,000 sources, one node lost mid-run
    .venv/bin/python benchmarks/cluster.py --sources 2000 --no-s3
    .venv/bin/python benchmarks/cluster.py --no-loss             # the undisturbed run only

A head and ``--workers`` worker nodes (``ray.cluster_utils.Cluster``, each with its own scratch root) run a pipeline
of our stage contract through engine.executor's Ray backend (engine/ray_data.py). Its stages stand in for the
ingest's: each SLEEPS for its measured per-source cost on this machine (``COSTS``, seconds per source from
metrics.json of a real ingest), divided by ``--scale``; no video is decoded.

Three runs on the same cluster: a short warm-up (not measured: worker processes start), the undisturbed run, and the
same run again in which, once half the sources are out, the worker node that ran the most batches in the last
10% of the sources is killed without grace (SIGKILL of its raylet and workers, ``remove_node(allow_graceful=
False)``) and a fresh node is added from another thread (the driver keeps consuming). Every source's output time is
recorded; for the loss run and, as its baseline, for the undisturbed run at the same point (half the sources out):

- the first output after the loss, and the longest gap between outputs in the 30 s after it;
- the output rate in 2 s windows, against the rate of the 10 s before: when it first falls under 90%, and from when
  on every window is back at 90% or more (windows up to 30 s after the loss and before the run's last 10% of
  outputs; or that it never fell under 90%, with its lowest value);
- the sources the execution gave up on: when the lost node held an actor, Ray Data aborts the execution and
  engine.ray_data yields every source not yet out as a transient failure (``worker_lost``), which the next run
  redoes: that rerun is run here too, and its wall time added to the loss run's;
- the wall time of both runs (the loss run's with its rerun): the extra seconds the loss cost.

Then, with the cluster gone: ledger entries (``atomic_write_json``, as tasks.sample_files.commit_clip writes them:
two rows per clip, one accepted key with its member checksums) and the manifest (tasks.publish.manifest) written at
1k, 2k, 5k and 10k entries; the keys packed into shards of 1000 samples (schemas.shard_writer, tiny members). A
resumed run's first steps (engine.run_setup.open_output + engine.ledger.split_finished) are timed over that folder,
and over the same run in a bucket of moto's S3 server (started on 127.0.0.1 by this script, as
tests/engine/test_s3_out.py does): ledger entries uploaded to ``cache/clips/`` and shards published by
engine.store_s3.S3Store as a run does, then resumed from the same machine (working folder present) and from another
(empty working folder: the ledger comes down, shard headers are read from the bucket).
"""
from __future__ import annotations

import argparse
import bisect
import os
import shutil
import sys
import tempfile
import threading
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




# -- the simulated runs ----------------------------------------------------------------------------------------------
WINDOW_S = 2.0  # the output rate's window
PRE_S = 10.0  # the rate before the loss: over this many seconds


def _tasks(nodes: dict[str, dict[str, int]]) -> dict[str, dict[str, int]]:
    return {node: dict(stages) for node, stages in list(nodes.items())}


def _lose_node(cluster, execution, before: dict[str, dict[str, int]], spare_args: dict) -> dict:
    """Kill the worker node that ran the most batches since ``before`` (without grace) and add a fresh one, from a
    thread: the driver keeps consuming output meanwhile. Returns the event, filled in as it happens."""
    now = _tasks(execution.metrics.nodes)
    alive = {node.node_id: node for node in cluster.worker_nodes}
    recent = {nid: {s: n - before.get(nid, {}).get(s, 0) for s, n in now.get(nid, {}).items()} for nid in alive}
    victim = max(alive, key=lambda nid: (sum(recent[nid].values()), nid))
    event = {"node": victim, "recent": {s: n for s, n in sorted(recent[victim].items()) if n},
             "stages_ever": sorted(now.get(victim, {}))}

    def act() -> None:
        event["lost_at"] = time.perf_counter()
        cluster.remove_node(alive[victim], allow_graceful=False)
        event["dead_at"] = time.perf_counter()
        import ray._private.utils as ray_utils

        handler = ray_utils.set_sigterm_handler  # signal.signal works in the main thread only: the node starts
        ray_utils.set_sigterm_handler = lambda *_: None  # without one (cluster.shutdown stops it)
        try:
            event["added"] = cluster.add_node(**spare_args).node_id
        finally:
            ray_utils.set_sigterm_handler = handler
        event["added_at"] = time.perf_counter()

    event["thread"] = threading.Thread(target=act, name="node-loss")
    event["thread"].start()
    while "lost_at" not in event:  # the loss moment is the kill's start
        time.sleep(0.001)
    return event


def _simulate(cluster, config, records: list[int], lose: dict | None = None) -> dict:
    """One run of SIMULATION over ``records``: each finished source's output time, the sources that came out failed
    (with their time and reason), the driver's RSS, the loss event."""
    from engine.executor import run_pipeline
    from engine.stage import Failed

    run = SimpleNamespace(run_id="bench", out=Path(tempfile.mkdtemp(prefix="driver-")), store=None)
    sources = len(records)
    execution = run_pipeline(records, SIMULATION, config, run)
    times, order, memory, failed = [], [], {}, []
    before = event = None
    started = time.perf_counter()
    for count, out in enumerate(execution, start=1):
        if isinstance(out, Failed):
            failed.append((time.perf_counter(), int(out.record), out.reason, out.transient))
        else:
            times.append(time.perf_counter())
            order.append(int(out))
        if count in (1000, sources):
            memory[count] = _rss_mib()
        if lose is not None and count == max(1, int(sources * 0.4)):
            before = _tasks(execution.metrics.nodes)
        if lose is not None and event is None and count >= sources // 2:
            event = _lose_node(cluster, execution, before or {}, lose)
    wall = time.perf_counter() - started
    if event is not None:
        event["thread"].join()
    shutil.rmtree(run.out, ignore_errors=True)
    return {"wall": wall, "times": times, "order": order, "memory": memory, "failed": failed, "event": event,
            "nodes": execution.metrics.summary().get("nodes") or {}, "started": started}


def _after(result: dict, mark: float, horizon: float = 30.0) -> dict:
    """How output went on after ``mark`` (the loss, or the same point of the undisturbed run)."""
    times = result["times"]
    cut = bisect.bisect_left(times, mark)
    pre = (cut - bisect.bisect_left(times, mark - PRE_S)) / PRE_S
    end = times[-1]
    first = times[cut] - mark if cut < len(times) else float("nan")
    window = [mark] + times[cut:bisect.bisect_right(times, mark + horizon)]
    gap = max((b - a for a, b in zip(window, window[1:])), default=0.0)

    def rate(start: float) -> float:
        return (bisect.bisect_left(times, start + WINDOW_S) - bisect.bisect_left(times, start)) / WINDOW_S

    # windows up to 30 s after the mark, and not into the run's drain (its last 10% of outputs)
    # (the execution's end, when it gave up: the first failed source)
    aborted = result["failed"][0][0] if result["failed"] else None
    until = min(mark + horizon, aborted or times[int(0.9 * (len(times) - 1))]) - WINDOW_S
    rates = [(s, rate(s)) for s in (mark + 0.05 * i for i in range(int(max(0.0, until - mark) / 0.05) + 1))]
    low = min((r for _, r in rates), default=pre)
    dip = next((s for s, r in rates if r < 0.9 * pre), None)
    last = max((s for s, r in rates if r < 0.9 * pre), default=None)
    back = None if last is None else last + WINDOW_S  # from here on every window is at 90% or more
    return {"pre": pre, "first": first, "gap": gap, "low": low / pre if pre else 0.0,
            "dip": None if dip is None else dip - mark, "back": None if back is None else back - mark,
            "last": end - mark, "until": until + WINDOW_S - mark,
            "aborted": None if aborted is None else aborted - mark}


def _recovery_table(loss: dict, base: dict, undisturbed: dict, disturbed: dict, rerun: dict | None,
                    lost_at: float) -> list[str]:
    def dip(r: dict) -> str:
        if r["dip"] is None:
            text = f"never under 90% (lowest {r['low']:.0%})"
        elif r["aborted"] is not None:
            text = f"under 90% from +{r['dip']:.2f} s (lowest {r['low']:.0%})"
        elif r["back"] >= r["until"]:
            text = f"under 90% from +{r['dip']:.2f} s, not back by +{r['until']:.1f} s (lowest {r['low']:.0%})"
        else:
            text = f"under 90% from +{r['dip']:.2f} s, at 90%+ from +{r['back']:.2f} s on (lowest {r['low']:.0%})"
        return text + (f" until the execution ended at +{r['aborted']:.2f} s" if r["aborted"] is not None else "")

    failed = disturbed["failed"]
    if failed:
        reasons = sorted({f"{reason}{', transient' if transient else ''}" for _, _, reason, transient in failed})
        ended = f"{len(failed)} sources out as failed ({'; '.join(reasons)}) from +{failed[0][0] - lost_at:.2f} s"
    else:
        ended = "none: every source finished"

    rows = [("output rate before (10 s)", f"{loss['pre']:.0f}/s", f"{base['pre']:.0f}/s"),
            ("first output after", f"{loss['first']:.3f} s", f"{base['first']:.3f} s"),
            ("longest output gap (30 s after)", f"{loss['gap']:.2f} s", f"{base['gap']:.2f} s"),
            (f"rate in {WINDOW_S:g} s windows", dip(loss), dip(base)),
            ("sources lost by the execution", ended, f"{len(undisturbed['failed'])}"),
            ("wall time", f"{disturbed['wall']:.1f} s", f"{undisturbed['wall']:.1f} s")]
    total = disturbed["wall"]
    if rerun is not None:
        rows.append(("rerun of the failed sources", f"{len(rerun['times'])} finished, {len(rerun['failed'])} "
                     f"failed, {rerun['wall']:.1f} s (the next run redoes them)", "-"))
        total += rerun["wall"]
        rows.append(("wall time with the rerun", f"{total:.1f} s", f"{undisturbed['wall']:.1f} s"))
    width = max(len(r[0]) for r in rows)
    column = max(len(r[1]) for r in rows)
    lines = [f"  {'':{width}}  {'with the loss':<{column}}  undisturbed, same point"]
    lines += [f"  {name:{width}}  {a:<{column}}  {b}" for name, a, b in rows]
    extra = total - undisturbed["wall"]
    lines.append(f"  the loss cost {extra:+.1f} s of wall time ({extra / undisturbed['wall']:+.0%})"
                 f"{', its rerun included' if rerun is not None else ''}")
    return lines


# -- ledger, manifest, resume ----------------------------------------------------------------------------------------
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sources", type=int, default=10_000)
    parser.add_argument("--workers", type=int, default=2, help="worker nodes besides the head")
    parser.add_argument("--scale", type=float, default=SETTINGS["scale"], help="stage costs divided by this")
    parser.add_argument("--batch", type=int, default=SETTINGS["batch"], help="sources per task")
    parser.add_argument("--no-loss", action="store_true", help="the undisturbed run only")
    parser.add_argument("--no-s3", action="store_true", help="resume from a local folder only")
    parser.add_argument("--no-resume", action="store_true", help="no ledger, manifest or resume figures")
    args = parser.parse_args()
    SETTINGS.update(scale=args.scale, batch=args.batch)

    import ray

    from schemas.config import Config

    root = Path(tempfile.mkdtemp(prefix="rc-bench-", dir="/tmp"))
    cluster, workers, node_args = _cluster(root, args.workers)
    try:
        config = Config.model_validate({"ray": {"enabled": True, "address": cluster.address}})
        sources = list(range(args.sources))
        _simulate(cluster, config, sources[:1000])  # warm-up: worker processes start
        undisturbed = _simulate(cluster, config, sources)
        disturbed = None if args.no_loss else _simulate(cluster, config, sources, node_args("w-new", 2))
        rerun = _simulate(cluster, config, sorted(i for _, i, _, _ in disturbed["failed"])) \
            if disturbed is not None and disturbed["failed"] else None
        names = {cluster.head_node.node_id: "head"}
        if disturbed is not None:
            names[disturbed["event"]["node"]] = "lost worker"
            names[disturbed["event"]["added"]] = "added worker"
        print(f"nodes: 1 head + {args.workers} workers (2 logical CPUs each)")
        for label, result in (("undisturbed", undisturbed), ("one worker lost", disturbed),
                              ("rerun of its failed sources", rerun)):
            if result is None:
                continue
            print(f"{label}: {len(result['order']) + len(result['failed'])} sources (stage costs / {args.scale:g}, {args.batch} per batch), "
                  f"wall {result['wall']:.1f} s, {args.sources / result['wall']:.0f} sources/s, "
                  f"{len(result['failed'])} failed")
            for node, info in result["nodes"].items():
                print(f"  batches on {names.get(node, 'worker')} {node[:8]}: {info['tasks']}")
            print("  driver RSS: " + ", ".join(f"{mib:.0f} MiB after {count} sources"
                                                for count, mib in sorted(result["memory"].items())))
        if disturbed is not None:
            event = disturbed["event"]
            base_mark = undisturbed["times"][args.sources // 2 - 1]
            print(f"node loss at {event['lost_at'] - disturbed['started']:.1f} s ({args.sources // 2} sources out): "
                  f"{event['node'][:8]}, which ran {sum(event['recent'].values())} batches in the last 10% "
                  f"({', '.join(f'{s} {n}' for s, n in event['recent'].items())}); killed in "
                  f"{event['dead_at'] - event['lost_at']:.2f} s, a fresh node up "
                  f"{event['added_at'] - event['lost_at']:.1f} s after the loss")
            for line in _recovery_table(_after(disturbed, event["lost_at"]), _after(undisturbed, base_mark),
                                        undisturbed, disturbed, rerun, event["lost_at"]):
                print(line)
    finally:
        ray.shutdown()
        cluster.shutdown()
    if not args.no_resume:
        from benchmarks.cluster_resume import listing

        listing(root, not args.no_s3)
    shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    os.environ.setdefault("RAY_DEDUP_LOGS", "1")
    main()
