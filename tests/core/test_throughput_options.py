"""The options and the tuning behind issue 14's speed and memory targets (benchmarks/ingest.py, memory.py)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml
from pydantic import ValidationError

from engine.process_memory import bound_malloc
from schemas.config import Config, load_config
from tasks.prefilter.motion import MeasureMotion
from tasks.video_io import decode_normalised
from tests.media import scene_frames, write_video

ROOT = Path(__file__).resolve().parents[2]


def test_decode_into_one_buffer_equals_the_whole_decode(tmp_path):
    path = write_video(tmp_path / "a.mp4", scene_frames(75, height=360, width=640, seed=3), fps=30)  # 40 frames
    whole = decode_normalised(path)
    first = decode_normalised(path, max_frames=17)
    beyond = decode_normalised(path, max_frames=60)  # more than the source has: only what it filled
    assert first.frames.shape == (17, 480, 832, 3) and first.truncated
    assert np.array_equal(first.frames, whole.frames[:17])
    assert beyond.frames.shape == whole.frames.shape and np.array_equal(beyond.frames, whole.frames)
    assert beyond.frames.base is None  # a copy of the filled part, not a view holding the unused tail


def test_motion_stage_can_be_switched_off():
    assert MeasureMotion.enabled_for(Config())
    off = load_config(overrides={"prefilter": {"motion": {"enabled": False}}})
    assert not MeasureMotion.enabled_for(off)
    assert MeasureMotion.name == "measure-motion"


def test_same_job_config_turns_off_everything_but_decode_and_encode(tmp_path):
    config = load_config(ROOT / "benchmarks" / "configs" / "same_job.yaml")
    assert config.prefilter.scene_cut.detector == "none" and not config.prefilter.motion.enabled
    assert config.geometry.backend == "none" and config.augment.mixture == {"none": 1.0}
    assert not config.vlm.enabled
    data = yaml.safe_load((ROOT / "benchmarks" / "configs" / "same_job.yaml").read_text())
    data["prefilter"]["motion"]["enable"] = False  # a misspelt option is an error, never a different run
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(data))
    with pytest.raises(ValidationError, match="enable"):
        load_config(bad)
    load_config(ROOT / "benchmarks" / "configs" / "memory.yaml")


_LIBC = """
import ctypes, os

class MallInfo2(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks",
                                               "fsmblks", "uordblks", "fordblks", "keepcost")]

libc = ctypes.CDLL("libc.so.6")
libc.mallinfo2.restype = MallInfo2
libc.malloc.restype = ctypes.c_void_p
libc.free.argtypes = [ctypes.c_void_p]
libc.memset.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_size_t]

def rss_mib():
    return int(open("/proc/self/statm").read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
"""

_MALLOC_PROBE = _LIBC + """
from engine.process_memory import bound_malloc, release_free_memory

assert bound_malloc()
mapped = libc.mallinfo2().hblks
blocks = [libc.malloc(3 << 19) for _ in range(100)]  # 100 decoded frames of 1.5 MB: heap pages, reused ...
print(libc.mallinfo2().hblks - mapped)
for block in blocks:
    libc.memset(block, 1, 3 << 19)
for block in blocks[::2]:  # ... and every other one freed: holes a heap cannot give back by shrinking
    libc.free(block)
held = rss_mib()
assert release_free_memory()
print(round(held - rss_mib()))
"""


# What a Ray worker runs (engine.ray_worker.StageWorker, as Ray Data calls it): one stage over one batch of one
# record that allocates the same blocks and frees every other one before it returns.
_RAY_WORKER_PROBE = _LIBC + """
from engine.ray_worker import INPUT, READY, RECORD, TRACE, Carried, StageWorker
from engine.stage import ProcessingStage
from schemas.config import load_config

kept = []

class Frames(ProcessingStage):
    name = "frames"

    def process(self, record):
        mapped = libc.mallinfo2().hblks
        blocks = [libc.malloc(3 << 19) for _ in range(100)]
        for block in blocks:
            libc.memset(block, 1, 3 << 19)
        for block in blocks[::2]:
            libc.free(block)
        kept.extend(blocks[1::2])
        return libc.mallinfo2().hblks - mapped, rss_mib()

out = StageWorker(Frames, load_config(), None)({RECORD: [Carried(0)], INPUT: [0], READY: [0.0], TRACE: ["[]"]})
mapped, held = out[RECORD][0].value
print(mapped, round(held - rss_mib()))
"""


@pytest.mark.parametrize("probe", [_MALLOC_PROBE, _RAY_WORKER_PROBE], ids=["local-backend", "ray-worker"])
def test_malloc_reuses_heap_pages_and_gives_free_ones_back_on_glibc(probe):
    import ctypes
    import subprocess
    import sys

    if not hasattr(ctypes.CDLL("libc.so.6"), "mallinfo2"):
        pytest.skip("glibc < 2.33")
    # a fresh process: in this one, earlier tests leave free heap chunks that a block may reuse
    out = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    mapped, released = map(int, out.stdout.split()[-2:])
    assert mapped == 0  # no frame-sized block is mapped (and page-faulted) on its own
    assert released >= 60  # the 50 freed blocks' 75 MiB leave resident memory when released


def test_transnet_sets_torch_threads():
    torch = pytest.importorskip("torch")
    from tasks.prefilter.cuts import TransNetV2Detector

    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        TransNetV2Detector(0.5, "cpu", threads=1)
        assert torch.get_num_threads() == 1
        TransNetV2Detector(0.5, "cpu", threads=0)  # 0: torch's default, left alone
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
