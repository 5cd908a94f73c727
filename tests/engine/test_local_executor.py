"""The local streaming backend: every input comes out once, stages overlap, memory is bounded by max_in_flight,
batches fill across inputs, and a failing input fails alone. Toy stages over integers: the engine knows nothing
of clips."""
from __future__ import annotations

import dataclasses
import errno
import gc
import threading
import time
import weakref
from dataclasses import dataclass, field

import numpy as np
import pytest

from engine.executor import UnknownStageError, run_pipeline
from engine.stage import Failed, Pipeline, ProcessingStage, Resources
from schemas.config import load_config

pytestmark = pytest.mark.timeout(60)


@dataclass
class Item:
    value: int
    seen: list[str] = field(default_factory=list)


class Probe:
    """Shared counters the toy stages write to (a test's eyes inside the worker threads)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.inside = 0
        self.inside_max = 0
        self.setups = 0
        self.batches: list[int] = []
        self.events: dict[str, threading.Event] = {}


PROBE = Probe()


class Double(ProcessingStage[Item, Item]):
    name, input_type, output_type = "double", Item, Item

    def setup(self) -> None:
        with PROBE.lock:
            PROBE.setups += 1

    def process(self, item: Item) -> Item:
        if item.value == 13:
            raise ValueError("thirteen is unlucky")
        if item.value == 28:
            raise OSError(errno.ENOSPC, "No space left on device")
        item.seen.append(self.name)
        item.value *= 2
        return item


class AddOne(ProcessingStage[Item, Item]):
    name, input_type, output_type = "add-one", Item, Item

    def process(self, item: Item) -> Item:
        item.seen.append(self.name)
        item.value += 1
        return item


class Batched(ProcessingStage[Item, Item]):
    """Raises on a batch holding 21 (from 10), so the engine must retry its records one by one."""

    name, input_type, output_type, resources, batch_size = "batched", Item, Item, Resources(gpus=1.0), 4

    def process_batch(self, items: list[Item]) -> list[Item]:
        with PROBE.lock:
            PROBE.batches.append(len(items))
        if any(i.value == 21 for i in items):
            raise RuntimeError("the model choked on 21")
        for item in items:
            item.seen.append(self.name)
        return items


def on_failure(failed: Failed, config, run):
    return ("failed", failed.record.value, failed.stage, failed.reason, failed.transient)


def pipeline(*stages) -> Pipeline:
    return Pipeline("toy", tuple(stages), on_failure=on_failure, record_id=lambda item: str(item.value))


def config(**executor):
    return load_config(None, {"executor": {"batch_wait_s": 0.2, **executor}})


@pytest.fixture(autouse=True)
def fresh_probe():
    global PROBE
    PROBE = Probe()
    yield


def test_every_input_comes_out_once_and_a_failing_one_fails_alone() -> None:
    execution = run_pipeline((Item(v) for v in range(30)), pipeline(Double, AddOne, Batched), config(), None)
    results = list(execution)
    assert len(results) == 30
    failed = sorted(r for r in results if isinstance(r, tuple))
    assert failed == [("failed", 13, "double", "clip_error", False),
                      ("failed", 21, "batched", "clip_error", False),  # 10 -> 21 made its whole batch raise
                      ("failed", 28, "double", "io_error", True)]  # disk full: the machine's fault, retried later
    good = sorted(r.value for r in results if not isinstance(r, tuple))
    assert good == sorted(v * 2 + 1 for v in range(30) if v not in (10, 13, 28))
    for item in (r for r in results if not isinstance(r, tuple)):
        assert item.seen == ["double", "add-one", "batched"]
    stages = execution.metrics.summary()["stages"]
    assert list(stages) == ["double", "add-one", "batched"]
    assert stages["double"]["items"] == 30 and stages["double"]["failed"] == 2
    assert stages["add-one"]["items"] == 28  # failed records go straight to the end: no stage sees them again
    assert stages["batched"]["failed"] == 1 and stages["batched"]["gpus"] == 1.0
    assert PROBE.setups == 1  # one worker, set up once


def test_batches_fill_across_inputs() -> None:
    list(run_pipeline((Item(v) for v in range(16)), pipeline(Batched), config(max_in_flight=16), None))
    assert max(PROBE.batches) == 4 and sum(PROBE.batches) == 16
    assert len(PROBE.batches) < 16


class Slow(ProcessingStage[Item, Item]):
    name, input_type, output_type = "slow", Item, Item

    def process(self, item: Item) -> Item:
        with PROBE.lock:
            PROBE.inside += 1
            PROBE.inside_max = max(PROBE.inside_max, PROBE.inside)
        time.sleep(0.01)
        return item


class Leave(ProcessingStage[Item, Item]):
    name, input_type, output_type = "leave", Item, Item

    def process(self, item: Item) -> Item:
        time.sleep(0.03)
        with PROBE.lock:
            PROBE.inside -= 1
        return item


def test_at_most_max_in_flight_inputs_are_inside() -> None:
    execution = run_pipeline((Item(v) for v in range(12)), pipeline(Slow, Double, AddOne, Leave),
                             config(max_in_flight=2, workers={"leave": 3}), None)
    assert len(list(execution)) == 12
    assert PROBE.inside_max <= 2 and execution.metrics.in_flight_max == 2
    assert execution.metrics.summary()["stages"]["leave"]["workers"] == 3


class First(ProcessingStage[Item, Item]):
    """Item 1 is processed only once the second stage holds item 0: impossible unless the stages overlap."""

    name, input_type, output_type = "first", Item, Item

    def process(self, item: Item) -> Item:
        if item.value == 1:
            assert PROBE.events["second-has-0"].wait(5), "stage 2 never ran while stage 1 had work"
            PROBE.events["first-has-1"].set()
        return item


class Second(ProcessingStage[Item, Item]):
    name, input_type, output_type = "second", Item, Item

    def process(self, item: Item) -> Item:
        if item.value == 0:
            PROBE.events["second-has-0"].set()
            assert PROBE.events["first-has-1"].wait(5), "stage 1 never ran while stage 2 had work"
        return item


def test_stages_overlap_on_different_inputs() -> None:
    PROBE.events = {"second-has-0": threading.Event(), "first-has-1": threading.Event()}
    results = list(run_pipeline((Item(v) for v in range(3)), pipeline(First, Second), config(), None))
    assert all(isinstance(r, Item) for r in results), results


def test_a_pipeline_never_starts_the_stages_it_passes_through() -> None:
    PROBE.setups = 0
    skipping = dataclasses.replace(pipeline(Double, AddOne), passed_through=frozenset({"double"}))
    execution = run_pipeline([Item(1), Item(2)], skipping, config(workers={"double": 2}), None)  # still a name
    assert sorted(r.value for r in execution) == [2, 3] and PROBE.setups == 0
    assert list(execution.metrics.summary()["stages"]) == ["add-one"]


def test_a_misnamed_stage_in_the_config_is_an_error() -> None:
    with pytest.raises(UnknownStageError, match="executor.workers names no stage of toy: dubble"):
        run_pipeline([Item(1)], pipeline(Double), config(workers={"dubble": 2}), None)


def test_closing_the_stream_early_stops_every_worker() -> None:
    before = threading.active_count()
    stream = iter(run_pipeline((Item(v) for v in range(1000)), pipeline(Slow, Leave), config(), None))
    next(stream)
    stream.close()  # e.g. the flow was cancelled
    deadline = time.time() + 5
    while threading.active_count() > before and time.time() < deadline:
        time.sleep(0.05)
    assert threading.active_count() <= before


FRAMES: list[weakref.ref] = []


class Payload:
    """A record carrying a large buffer, as a clip carries its frames."""

    def __init__(self, value: int) -> None:
        self.value, self.seen = value, []
        self.frames = np.zeros(1 << 20, np.uint8)


class Load(ProcessingStage[Item, Payload]):
    """Like decode-source: the frames are made inside the pipeline."""

    name, input_type, output_type = "load", Item, Payload

    def process(self, item: Item) -> Payload:
        payload = Payload(item.value)
        FRAMES.append(weakref.ref(payload.frames))
        return payload


class Summarise(ProcessingStage[Payload, Item]):
    """Like write-samples: what leaves the pipeline is a small result, not the record with its frames."""

    name, input_type, output_type = "summarise", Payload, Item

    def process(self, record: Payload) -> Item:
        return Item(record.value, list(record.seen))


def test_a_finished_record_is_freed_while_the_stage_workers_wait_for_the_next() -> None:
    """Workers idle between inputs (the next source still listing) must not hold the last one's frames."""
    release = threading.Event()
    FRAMES.clear()

    def inputs():
        yield Item(1)
        release.wait(20)  # the next input is slow to arrive: every worker waits
        yield Item(2)

    gc.disable()  # only reference counts free memory here, as between two runs of the cyclic GC
    try:
        stages = pipeline(Load, Double, AddOne, Slow, Summarise)
        execution = iter(run_pipeline(inputs(), stages, config(), None))
        assert next(execution).value == 3
        time.sleep(0.3)  # every worker is back at its queue
        alive = FRAMES[0]() is not None
        release.set()
        assert [r.value for r in execution] == [5]
    finally:
        gc.enable()
    assert not alive, "a stage worker kept a finished record (and its frames) alive"
