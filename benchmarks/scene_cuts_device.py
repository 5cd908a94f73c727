"""TransNetV2, the default scene-cut detector, as an ingest runs it (CPU, float32) against its other ways of running:
bf16 autocast on a CPU with native bf16, and CUDA (float32, and bf16). Same frames: same answers? how long each?

    .venv/bin/python benchmarks/scene_cuts_device.py                  # the labelled real clips, tests/data/real
    .venv/bin/python benchmarks/scene_cuts_device.py --clips DIR --frames 162

The checks behind ``prefilter.scene_cut.transnet_device: cuda`` (configs/gpu.yaml) and ``transnet_precision:
bfloat16``. Each clip's first ``--frames`` frames (OpenCV decode, resized to 832x480) go through
``TransNetV2Detector`` on the CPU in float32 (one torch thread, as an ingest worker runs it), then through each
variant this machine has. Printed per clip and variant: seconds, the largest difference between the per-frame
transition probabilities and the baseline's, and whether the transitions found are the same. A variant this machine
cannot run is named, with why.
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


def variants(threshold: float) -> tuple[list[tuple[str, TransNetV2Detector, object]], list[str]]:
    """(name, detector, sync) for each way this machine can run besides the baseline; and what it cannot run."""
    import torch

    from tasks.prefilter.cuts import UnsupportedPrecision

    wanted = [("cpu bf16", "cpu", "bfloat16"), ("cuda", "cuda", "float32"), ("cuda bf16", "cuda", "bfloat16")]
    found, missing = [], []
    for name, device, precision in wanted:
        if device == "cuda" and not torch.cuda.is_available():
            missing.append(f"{name}: no CUDA")
            continue
        try:
            detector = TransNetV2Detector(threshold, device, threads=1 if device == "cpu" else 0, precision=precision)
        except UnsupportedPrecision as exc:
            missing.append(f"{name}: {exc}")
            continue
        found.append((name, detector, torch.cuda.synchronize if device == "cuda" else (lambda: None)))
    return found, missing


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clips", default=str(ROOT / "tests" / "data" / "real"))
    parser.add_argument("--frames", type=int, default=162, help="frames per clip (162: an ingest's two windows)")
    parser.add_argument("--threshold", type=float, default=0.5)
    args = parser.parse_args()
    paths = sorted(p for p in Path(args.clips).iterdir() if p.suffix.lower() in SUFFIXES)
    baseline = TransNetV2Detector(args.threshold, "cpu", threads=1)
    others, missing = variants(args.threshold)
    print(f"TransNetV2 on {len(paths)} clips of up to {args.frames} frames; baseline: CPU float32, 1 torch thread; "
          f"against: {', '.join(name for name, _, _ in others) or 'nothing'}")
    for line in missing:
        print(f"  not run: {line}")
    warm = read_frames(paths[0], 100)
    for _, detector, sync in [("cpu", baseline, lambda: None), *others]:
        timed(detector, warm, sync)  # kernels (and a CUDA context) warm
    seconds = {"cpu": 0.0, **{name: 0.0 for name, _, _ in others}}
    worst = {name: 0.0 for name, _, _ in others}
    same = {name: 0 for name, _, _ in others}
    frames_total, clips = 0, 0
    for path in paths:
        frames = read_frames(path, args.frames)
        if len(frames) < 2:
            continue
        clips += 1
        base_s, reference = timed(baseline, frames, lambda: None)
        seconds["cpu"] += base_s
        frames_total += len(frames)
        row = f"  {path.name:32s} {len(frames):4d} frames  cpu {base_s:6.3f} s"
        for name, detector, sync in others:
            took, result = timed(detector, frames, sync)
            diff = float(np.abs(reference.probabilities - result.probabilities).max())
            agree = reference.transitions == result.transitions
            seconds[name] += took
            worst[name], same[name] = max(worst[name], diff), same[name] + agree
            row += f"  | {name} {took:6.3f} s, max |dp| {diff:.2e}, transitions {'same' if agree else 'DIFFER'}"
        print(row)
    per = 162 / max(frames_total, 1)
    print(f"total: {frames_total} frames; cpu {seconds['cpu']:.2f} s ({seconds['cpu'] * per:.3f} s per 162 frames)")
    for name, _, _ in others:
        print(f"  {name}: {seconds[name]:.2f} s ({seconds[name] * per:.3f} s per 162 frames), "
              f"{seconds['cpu'] / max(seconds[name], 1e-9):.2f}x the baseline's speed; largest probability "
              f"difference {worst[name]:.2e}; transitions the same on {same[name]} of {clips} clips")
    return 0


if __name__ == "__main__":
    sys.exit(main())
