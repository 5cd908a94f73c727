"""SIMULATION: does the Ray Data backend keep a GPU stage busy? CPU stages feeding a GPU stage, on logical GPUs.

    .venv/bin/python benchmarks/pipeline.py                       # defaults below, on this machine
    .venv/bin/python benchmarks/pipeline.py --gpus 2 --gpu-batch 16 --gpu-latency 1.0 --cpu-ms 8 --items 480

A pipeline of our stage contract (engine/stage.py) runs through engine.executor's Ray backend on a local Ray
started with ``--gpus`` logical GPUs (``ray.init(num_gpus=N)`` works on a CPU machine). Its stages:
  sim-decode, sim-prepare  CPU stages (Ray tasks): each spins a core for --cpu-ms per record (real CPU work);
  sim-gpu                  the GPU stage (an actor pool, 1 logical GPU per actor, one actor per GPU): sleeps
                           --gpu-latency per batch of --gpu-batch records, standing in for Qwen3-VL / DA3. It is a
                           SIMULATION: no model runs, no GPU is used;
  sim-write                a CPU stage (tasks) of --write-ms per record.
Printed: each stage's busy fraction (time inside process_batch / (workers x wall)), the GPU stage's busy fraction
in the steady state (while every GPU actor is at work: from the last actor's first batch to the first actor's last
batch end, so Ray start-up, model setup and the drain tail are excluded; one line reads
``GPU stage busy fraction: <x>``), the same from the first to the last GPU batch, throughput (steady state, and end
to end), the analytic bound min(stage capacities) and the ratio of the steady-state throughput to it.
Capacities: GPU = actors x batch / latency; CPU stages share the machine's cores: cores / CPU seconds per record
(and each stage's workers / its seconds per record). Targets (issue 14): GPU busy >= 0.90 whenever the CPU stages
can feed it; throughput >= 0.90 of the bound.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine.stage import Pipeline, ProcessingStage, Resources  # noqa: E402

TARGET_BUSY, TARGET_RATIO = 0.90, 0.90


@dataclass
class Item:
    index: int
    payload: bytes  # stands in for a clip's data crossing the object store between stages
    gpu_batch: tuple[float, float, int] | None = None  # (start, end, actor pid) of its GPU batch
    log: list[str] = field(default_factory=list)


def _spin(seconds: float) -> None:
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


class _CpuStage(ProcessingStage[Item, Item]):
    input_type, output_type, resources = Item, Item, Resources(cpus=1.0)
    knob = "cpu_ms"

    @classmethod
    def batch_size_for(cls, config) -> int:  # records per Ray task: amortises the per-task cost
        return SETTINGS["cpu_batch"]

    def process(self, item: Item) -> Item:
        _spin(SETTINGS[self.knob] / 1000)
        item.log.append(self.name)
        return item


class SimDecode(_CpuStage):
    name = "sim-decode"


class SimPrepare(_CpuStage):
    name = "sim-prepare"


class SimWrite(_CpuStage):
    name = "sim-write"
    knob = "write_ms"


class SimGpu(ProcessingStage[Item, Item]):
    """SIMULATION of a model stage: one logical GPU per actor, a setup that 'loads the model', a fixed latency
    per batch whatever its size (a GPU batch costs about the same up to its size)."""

    name, input_type, output_type = "sim-gpu", Item, Item

    @classmethod
    def resources_for(cls, config) -> Resources:
        return Resources(cpus=1.0, gpus=1.0)

    @classmethod
    def batch_size_for(cls, config) -> int:
        return SETTINGS["gpu_batch"]

    @classmethod
    def workers_for(cls, config) -> int:
        return SETTINGS["gpus"]

    def setup(self) -> None:
        time.sleep(SETTINGS["setup_s"])  # the weights load once per actor

    def process_batch(self, items: list[Item]) -> list[Item]:
        started = time.time()
        time.sleep(SETTINGS["gpu_latency"])
        stamp = (started, time.time(), os.getpid())
        for item in items:
            item.gpu_batch = stamp
            item.log.append(self.name)
        return items


# The knobs, read by the stages in the workers: set from the command line before the classes are pickled (by
# value, with this module's globals, when the script runs as __main__).
SETTINGS: dict = {"cpu_ms": 8.0, "write_ms": 4.0, "cpu_batch": 32, "gpu_batch": 16, "gpu_latency": 1.0, "gpus": 2,
                  "setup_s": 2.0}

SIMULATION = Pipeline("simulation", (SimDecode, SimPrepare, SimGpu, SimWrite),
                      on_failure=lambda failed, config, run: failed, record_id=lambda item: str(item.index))


def analytic_bound(cores: int) -> dict[str, float]:
    """Records/s each resource can sustain, from the declared costs (not from the run)."""
    cpu_s = (2 * SETTINGS["cpu_ms"] + SETTINGS["write_ms"]) / 1000
    return {"gpu": SETTINGS["gpus"] * SETTINGS["gpu_batch"] / SETTINGS["gpu_latency"],
            "cpu (all CPU stages on the cores)": cores / cpu_s}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=480)
    parser.add_argument("--gpus", type=int, default=SETTINGS["gpus"], help="logical GPUs = GPU-stage actors")
    parser.add_argument("--gpu-batch", type=int, default=SETTINGS["gpu_batch"])
    parser.add_argument("--gpu-latency", type=float, default=SETTINGS["gpu_latency"], help="seconds per batch")
    parser.add_argument("--cpu-ms", type=float, default=SETTINGS["cpu_ms"], help="per record, each CPU stage")
    parser.add_argument("--write-ms", type=float, default=SETTINGS["write_ms"])
    parser.add_argument("--cpu-batch", type=int, default=SETTINGS["cpu_batch"])
    parser.add_argument("--payload-kb", type=int, default=64)
    parser.add_argument("--in-flight", type=int, default=None, help="ray.max_in_flight: batches queued per actor")
    args = parser.parse_args()
    SETTINGS.update(cpu_ms=args.cpu_ms, write_ms=args.write_ms, cpu_batch=args.cpu_batch, gpu_batch=args.gpu_batch,
                    gpu_latency=args.gpu_latency, gpus=args.gpus)

    from engine.executor import run_pipeline
    from engine.ray_data import LOCAL_OBJECT_STORE_BYTES, needed_cpus, plan_stages
    from engine.runtime import ray_session, worker_env_vars
    from schemas.config import load_config

    cores = os.cpu_count() or 1
    # Logical CPUs: the machine's cores for the CPU stages, plus the CPU each GPU actor reserves (it feeds its
    # GPU; here it sleeps), so the reservation of the GPU actors does not take the CPU stages' cores.
    ray_overrides = {"enabled": True, "num_cpus": cores + args.gpus}
    if args.in_flight:
        ray_overrides["max_in_flight"] = args.in_flight
    config = load_config(overrides={"ray": ray_overrides})
    plans = plan_stages(SIMULATION, config, config.ray.num_cpus)
    with ray_session("local", num_cpus=max(config.ray.num_cpus, needed_cpus(plans)), env_vars=worker_env_vars(),
                     min_free_disk_gib=config.ray.min_free_disk_gib, num_gpus=args.gpus,
                     object_store_bytes=LOCAL_OBJECT_STORE_BYTES):
        payload = os.urandom(args.payload_kb * 1024)
        items = [Item(i, payload) for i in range(args.items)]
        started = time.perf_counter()
        execution = run_pipeline(items, SIMULATION, config, None)
        done = list(execution)
        wall = time.perf_counter() - started
    failed = [d for d in done if not isinstance(d, Item)]
    assert not failed and sorted(d.index for d in done) == list(range(args.items)), failed[:3]
    assert all(d.log == [s.name for s in SIMULATION.stages] for d in done)

    summary = execution.metrics.summary()
    sizes = Counter(d.gpu_batch for d in done)  # (start, end, actor pid) -> records in that GPU batch
    batches = set(sizes)
    first, last = min(b[0] for b in batches), max(b[1] for b in batches)
    # Steady state: while every GPU actor is at work, from the last actor's first batch to the first actor's last
    # batch end (the start-up before it and the drain tail after it, when the last batches are shared out
    # unevenly, are excluded). Busy fraction and throughput are measured inside that window.
    actors = {b[2] for b in batches}
    begin = max(min(b[0] for b in batches if b[2] == a) for a in actors)
    end = min(max(b[1] for b in batches if b[2] == a) for a in actors)
    steady = end - begin
    overlap = {b: max(0.0, min(b[1], end) - max(b[0], begin)) for b in batches}
    gpu_busy = sum(overlap.values()) / (len(actors) * steady)
    throughput = sum(sizes[b] * overlap[b] / (b[1] - b[0]) for b in batches) / steady
    whole_busy = sum(b[1] - b[0] for b in batches) / (len(actors) * (last - first))
    bounds = analytic_bound(cores)
    bound = min(bounds.values())
    print(f"SIMULATION (no model, no GPU: the GPU stage sleeps {args.gpu_latency} s per batch of {args.gpu_batch} "
          f"on {args.gpus} logical GPUs), Ray Data backend, {cores} cores, {args.items} records, CPU stages "
          f"{args.cpu_ms} + {args.cpu_ms} + {args.write_ms} ms per record")
    print(f"executor wall {wall:.2f} s (Ray start-up, actor setup and drain included); GPU stage from its first "
          f"batch to its last {last - first:.2f} s, steady state (every GPU actor at work) {steady:.2f} s; "
          f"{len(batches)} GPU batches, mean {args.items / len(batches):.1f} records")
    for name, stage in summary["stages"].items():
        capacity = stage["workers"] / stage["seconds_per_item"] if stage["seconds_per_item"] else float("inf")
        print(f"  {name:12s} workers {stage['workers']:2d}  busy fraction {stage['busy_fraction']:.3f} (whole run)  "
              f"{stage['seconds_per_item'] * 1000:7.1f} ms/record/worker  capacity {capacity:8.1f} rec/s  "
              f"queue mean {stage['queue_mean']:.1f}")
    for pid in sorted({b[2] for b in batches}):
        mine = sorted(b for b in batches if b[2] == pid)
        gaps = [later[0] - earlier[1] for earlier, later in zip(mine, mine[1:])]
        print(f"  GPU actor {pid}: {len(mine)} batches from +{mine[0][0] - first:.2f} s to +{mine[-1][1] - first:.2f}"
              f" s; idle between batches: mean {sum(gaps) / max(len(gaps), 1):.3f} s, max {max(gaps, default=0):.3f} s")
    print(f"GPU stage busy fraction: {gpu_busy:.3f}")
    print(f"  (steady state; target >= {TARGET_BUSY:.2f}: {'met' if gpu_busy >= TARGET_BUSY else 'NOT met'}; "
          f"from first to last GPU batch, drain tail included: {whole_busy:.3f})")
    print("analytic bound: " + ", ".join(f"{k} {v:.1f} rec/s" for k, v in bounds.items()) + f" -> {bound:.1f} rec/s")
    print(f"throughput (steady state): {throughput:.2f} rec/s; first to last GPU batch: "
          f"{args.items / (last - first):.2f} rec/s; end to end incl. Ray start-up: {args.items / wall:.2f} rec/s")
    print(f"throughput / bound: {throughput / bound:.3f}  target >= {TARGET_RATIO:.2f}: "
          f"{'met' if throughput / bound >= TARGET_RATIO else 'NOT met'}")


if __name__ == "__main__":
    main()
