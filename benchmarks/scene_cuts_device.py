"""TransNetV2, the default scene-cut detector, on CPU and on CUDA: same frames, same answers, how long each takes.

    .venv/bin/python benchmarks/scene_cuts_device.py                  # the labelled real clips, tests/data/real
    .venv/bin/python benchmarks/scene_cuts_device.py --clips DIR --frames 162

A device check for ``prefilter.scene_cut.transnet_device: cuda`` (configs/gpu.yaml). Each clip's first ``--frames``
frames (OpenCV decode, resized to 832x480) go through ``TransNetV2Detector`` on the CPU (one torch thread, as an
ingest worker runs it) and, when CUDA is there, on the GPU. Printed per clip: frames, seconds on each device, the
largest difference between the per-frame transition probabilities, and whether the transitions found are the same.
Without CUDA the CUDA columns say so.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tasks.prefilter.cuts import TransNetV2Detector  # noqa: E402

SUFFIXES = {".mp4", ".avi", ".mov", ".mkv", ".webm"}


def read_frames(path: Path, limit: int) -> np.ndarray:
    capture = cv2.VideoCapture(str(path))
    frames = []
    while len(frames) < limit:
        ok, bgr = capture.read()
        if not ok:
            break
        frames.append(cv2.cvtColor(cv2.resize(bgr, (832, 480), interpolation=cv2.INTER_AREA), cv2.COLOR_BGR2RGB))
    capture.release()
    return np.stack(frames) if frames else np.zeros((0, 480, 832, 3), np.uint8)


def timed(detector: TransNetV2Detector, frames: np.ndarray, sync) -> tuple[float, object]:
    started = time.perf_counter()
    result = detector.detect(frames, 16.0)
    sync()
    return time.perf_counter() - started, result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clips", default=str(ROOT / "tests" / "data" / "real"))
    parser.add_argument("--frames", type=int, default=162, help="frames per clip (162: an ingest's two windows)")
    parser.add_argument("--threshold", type=float, default=0.5)
    args = parser.parse_args()
    import torch

    paths = sorted(p for p in Path(args.clips).iterdir() if p.suffix.lower() in SUFFIXES)
    cpu = TransNetV2Detector(args.threshold, "cpu", threads=1)
    gpu = TransNetV2Detector(args.threshold, "cuda") if torch.cuda.is_available() else None
    print(f"TransNetV2 on {len(paths)} clips of up to {args.frames} frames; CPU: 1 torch thread; CUDA: "
          f"{torch.cuda.get_device_name(0) if gpu else 'not available'}")
    if gpu is not None:
        timed(gpu, read_frames(paths[0], 100), torch.cuda.synchronize)  # CUDA context and kernels warm
    totals = {"cpu": 0.0, "cuda": 0.0, "frames": 0}
    worst, same = 0.0, 0
    for path in paths:
        frames = read_frames(path, args.frames)
        if len(frames) < 2:
            continue
        cpu_s, on_cpu = timed(cpu, frames, lambda: None)
        row = f"  {path.name:32s} {len(frames):4d} frames  cpu {cpu_s:6.3f} s"
        totals["cpu"] += cpu_s
        totals["frames"] += len(frames)
        if gpu is not None:
            cuda_s, on_gpu = timed(gpu, frames, torch.cuda.synchronize)
            diff = float(np.abs(on_cpu.probabilities - on_gpu.probabilities).max())
            agree = on_cpu.transitions == on_gpu.transitions
            worst, same = max(worst, diff), same + agree
            totals["cuda"] += cuda_s
            row += f"  cuda {cuda_s:6.3f} s  max |dp| {diff:.2e}  transitions {'same' if agree else 'DIFFER'}"
        print(row)
    per = 162 / max(totals["frames"], 1)
    print(f"total: {totals['frames']} frames; cpu {totals['cpu']:.2f} s ({totals['cpu'] * per:.3f} s per 162 frames)")
    if gpu is not None:
        print(f"       cuda {totals['cuda']:.2f} s ({totals['cuda'] * per:.3f} s per 162 frames), speed-up "
              f"{totals['cpu'] / max(totals['cuda'], 1e-9):.1f}x; largest probability difference {worst:.2e}; "
              f"transitions the same on {same} of {len(paths)} clips")
    return 0


if __name__ == "__main__":
    sys.exit(main())
