"""Every ingest stage honours the stage contract: declared record types that chain, resources sized by the
config, and a plain-Python call path (no Prefect, no Ray) that tests and both executor backends share."""
from __future__ import annotations

from pathlib import Path

import pytest

from engine.stage import Failed, ProcessingStage, Resources, apply_stage
from flows.ingest import INGEST
from schemas.config import load_config
from tasks.clip import Clip, Reject
from tasks.records import SourceItem
from tasks.samples import ClipResult
from tasks.sources.resolve import list_sources


def test_ingest_stages_declare_types_that_chain() -> None:
    stages = INGEST.stages
    assert stages[0].input_type is SourceItem and stages[-1].output_type is ClipResult
    for before, after in zip(stages, stages[1:]):
        assert before.output_type is after.input_type, (before.name, after.name)
    names = [stage.name for stage in stages]
    assert len(set(names)) == len(names) and all(names)
    for stage in stages:
        assert issubclass(stage, ProcessingStage) and isinstance(stage.resources, Resources)
        assert stage.batch_size_for(load_config()) >= 1


def test_resources_follow_the_config() -> None:
    by_name = {stage.name: stage for stage in INGEST.stages}
    offline = load_config()
    assert "judge-events" not in [s.name for s in INGEST.active(offline)]  # no VLM configured: no judge stage
    assert all(s.resources_for(offline).gpus == 0 for s in INGEST.active(offline))  # nothing reserves a GPU
    gpu = load_config(None, {"vlm": {"model": "/models/qwen", "num_gpus_per_worker": 1.0, "num_workers": 2,
                                     "batch_size": 8},
                             "geometry": {"backend": "da3", "model": "/models/da3", "num_gpus_per_worker": 0.5}})
    judge, cameras = by_name["judge-events"], by_name["estimate-cameras"]
    assert judge in INGEST.active(gpu)
    assert judge.resources_for(gpu).gpus == 1.0 and judge.workers_for(gpu) == 2
    assert judge.batch_size_for(gpu) == 4  # 8 windows per VLM batch, 2 windows per clip: batches span clips
    assert cameras.resources_for(gpu).gpus == 0.5
    served = load_config(None, {"vlm": {"backend": "openai", "base_url": "http://127.0.0.1:9", "model": "m",
                                        "num_gpus_per_worker": 1.0}})
    assert judge.resources_for(served).gpus == 0  # the model runs on the server, not in the worker
    cuts = by_name["detect-scene-cuts"]
    production = load_config(Path(__file__).resolve().parents[2] / "configs" / "gpu.yaml")
    assert cuts.resources_for(production).gpus == 0.25 and cuts.workers_for(production) == 1  # TransNetV2 on CUDA
    assert cuts.resources_for(offline).gpus == 0 and cuts.workers_for(offline) == 2  # on CPU: two one-thread workers


@pytest.mark.timeout(120)
def test_the_stages_run_as_plain_python(tmp_path) -> None:
    """The chain by hand, as a test or a notebook would call it: setup once, then process_batch."""
    config = load_config(None, {"augment": {"mixture": {"light_toggle": 1.0}}})
    items = list_sources("synthetic:2", config, tmp_path, False).items
    records: list = items
    for stage_cls in INGEST.active(config)[:-1]:  # all but the writer, which needs a run folder
        stage = stage_cls(config)
        stage.setup()
        records = apply_stage(stage, records)
    assert not [r for r in records if isinstance(r, Failed)]
    assert all(isinstance(r, Clip) and r.windows for r in records)
    assert all(w.augmented is not None and w.augmented.kind.value == "light_toggle"
               for clip in records for w in clip.windows)


@pytest.mark.parametrize("error", [Reject, ValueError])
def test_a_window_turned_down_frees_its_frames_without_the_cyclic_gc(error) -> None:
    """An exception kept in a local of the frame that raises it (``err = Reject(...); raise err``) makes a cycle
    through its traceback; until the cyclic GC ran (seconds later) it held the window's frames: per_window clears
    the caught traceback's frames, so reference counts free them at once."""
    import gc
    import weakref

    import numpy as np

    from tasks.clip import per_window
    from tasks.records import Window

    @per_window("toy-filter")
    def turn_down(window: Window) -> Window:
        pixels = window.frames  # a local of the raising frame, as measure() holds the frames
        verdict = error("static_scene")  # the exception itself in a local: the cycle
        assert pixels is not None
        raise verdict

    frames = np.zeros((81, 48, 83, 3), np.uint8)
    alive = weakref.ref(frames)
    clip = Clip(SourceItem("x", "local", "x.mp4"))
    clip.windows = [Window(clip.item, 0, 0, frames, (0.0, 5.0))]
    del frames
    gc.disable()
    try:
        turn_down(clip)
        assert [o.window for o in clip.outcomes] == [0] and not clip.windows
        freed = alive() is None
    finally:
        gc.enable()
    assert freed
