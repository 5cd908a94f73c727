"""Every check of the sample validator, one bad sample each: `validate` must name the key and the problem.

A shard holds two valid samples (a clean one and an occluded one, 480x832 H.264 at 16 fps, cameras, depth) and,
per case, one sample broken in exactly one way. The valid ones must pass (the control), each broken one must be
reported with its key and a sentence naming what is wrong, and nothing else may be reported for it by accident.
"""
from __future__ import annotations

import io
import json
import tarfile
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from remind_curate.cli import main
from schemas.constants import DEPTH_HEIGHT, DEPTH_WIDTH, FPS, HEIGHT, NUM_FRAMES, WIDTH
from schemas.sample import GeometryMeta, SampleMeta, SourceInfo
from schemas.sample_io import Sample, json_bytes, npy_bytes
from tasks.shards.validate import validate_path
from tasks.video_io import encode_h264
from schemas.graph import InterruptionKind
from tasks.graph import build_graph, chunked_graph

Members = dict[str, bytes]


def _frames(n: int = NUM_FRAMES, height: int = HEIGHT, width: int = WIDTH) -> np.ndarray:
    yy, xx = np.mgrid[0:height, 0:width]
    base = np.stack([xx * 255 // width, yy * 255 // height, np.full_like(xx, 90)], -1).astype(np.uint8)
    frames = np.repeat(base[None], n, axis=0)
    for f in range(n):
        frames[f, 100:160, 10 + 8 * f:70 + 8 * f] = 255
    return frames


def _encode(frames: np.ndarray, fps: int = FPS, codec: str = "libx264") -> bytes:
    if codec == "libx264":
        return encode_h264(frames, fps=fps, preset="ultrafast")
    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format="mp4") as container:
        stream = container.add_stream(codec, rate=Fraction(fps))
        stream.height, stream.width = frames.shape[1:3]
        stream.pix_fmt = "yuv420p"
        for frame in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())
    return buffer.getvalue()


@pytest.fixture(scope="module")
def videos() -> dict[str, bytes]:
    frames = _frames()
    return {"good": _encode(frames), "fps15": _encode(frames, fps=15),
            "small": _encode(_frames(height=240, width=416)), "mpeg4": _encode(frames, codec="mpeg4"),
            "short": _encode(frames[:77])}


def _graph(occluded: bool):
    """Graphs from the production builders: an occluder hiding chunks 2-3, or a clean clip."""
    if not occluded:
        return build_graph(InterruptionKind.none, per_frame={"event_visibility": [1.0] * NUM_FRAMES})
    visibility = [0.0 if 9 <= f <= 32 else 1.0 for f in range(NUM_FRAMES)]  # chunks 2..3 = frames 9..32
    return chunked_graph(InterruptionKind.occluder, 2, 3, visibility, 0.05)


def _sample(key: str, videos: dict[str, bytes], occluded: bool) -> Sample:
    graph = _graph(occluded)
    c2w = np.tile(np.eye(4, dtype=np.float32), (NUM_FRAMES, 1, 1))
    angle = np.linspace(0, 0.3, NUM_FRAMES)
    c2w[:, 0, 0], c2w[:, 0, 2], c2w[:, 2, 0], c2w[:, 2, 2] = np.cos(angle), np.sin(angle), -np.sin(angle), np.cos(angle)
    c2w[:, 0, 3] = np.linspace(0, 1, NUM_FRAMES)
    K = np.tile(np.array([[700.0, 0, 415.5], [0, 700.0, 239.5], [0, 0, 1]], np.float32), (NUM_FRAMES, 1, 1))
    depth = np.full((NUM_FRAMES, DEPTH_HEIGHT, DEPTH_WIDTH), 3.0, np.float16)
    meta = SampleMeta(key=key, clip_id=key, window=0, source=SourceInfo(kind="synthetic", uri=f"test://{key}"),
                      source_span_s=(0.0, NUM_FRAMES / FPS), interruption=graph.interruption.kind,
                      geometry=GeometryMeta(known=True, backend="ground_truth", has_depth=True),
                      config_hash="test", run_id="test")
    return Sample(key=key, mp4=videos["good"], graph=graph, meta=meta,
                  degraded_mp4=videos["good"] if occluded else None, camera=c2w, intrinsics=K,
                  depth=depth, depth_conf=np.ones_like(depth), caption="a square moving right",
                  degraded_caption="a dark board slides over the square" if occluded else "")


def _meta(members: Members, **changes: object) -> Members:
    meta = json.loads(members["meta.json"])
    for dotted, value in changes.items():
        *path, last = dotted.split("__")
        target = meta
        for part in path:
            target = target[part]
        target[last] = value
    return {**members, "meta.json": json_bytes(meta)}


def _array(members: Members, ext: str, edit: Callable[[np.ndarray], None]) -> Members:
    array = np.load(io.BytesIO(members[ext])).copy()
    edit(array)
    return {**members, ext: npy_bytes(array)}


def _without(members: Members, *exts: str) -> Members:
    return {k: v for k, v in members.items() if k not in exts}


def _set(array: np.ndarray, index: tuple, value: float) -> None:
    array[index] = value


# case -> (base: "clean" | "occluded", mutation, expected sentence)
CASES: dict[str, tuple[str, Callable[[Members, dict], Members], str]] = {
    "degraded-missing": ("occluded", lambda m, v: _without(m, "degraded.mp4", "degraded.txt"),
                         "degraded.mp4 missing for interruption kind occluder"),
    "degraded-extra": ("clean", lambda m, v: {**m, "degraded.mp4": v["good"], "degraded.txt": b"occluded"},
                       "degraded.mp4 present but the interruption kind is none"),
    "meta-key": ("clean", lambda m, v: _meta(m, key="someone-else"),
                 "meta.json key 'someone-else' differs from __key__"),
    "meta-interruption": ("occluded", lambda m, v: _meta(m, interruption="zoom"),
                          "meta.json interruption 'zoom' differs from graph's 'occluder'"),
    "frame0": ("clean", lambda m, v: _array(m, "camera.npy", lambda a: _set(a, (0, 0, 3), 0.5)),
               "camera.npy frame 0 is not the identity"),
    "orthonormal": ("clean", lambda m, v: _array(m, "camera.npy", lambda a: _set(a, (40, 1, 1), 1.2)),
                    "camera.npy rotations are not orthonormal"),
    "bottom-row": ("clean", lambda m, v: _array(m, "camera.npy", lambda a: _set(a, (7, 3, 0), 0.2)),
                   "camera.npy bottom rows are not [0, 0, 0, 1]"),
    "nan-camera": ("clean", lambda m, v: _array(m, "camera.npy", lambda a: _set(a, (9, 2, 3), np.nan)),
                   "camera.npy has non-finite values"),
    "inf-depth": ("clean", lambda m, v: _array(m, "depth.npy", lambda a: _set(a, (3, 5, 5), np.inf)),
                  "depth.npy has non-finite values"),
    "focal": ("clean", lambda m, v: _array(m, "intrinsics.npy", lambda a: _set(a, (12, 1, 1), 0.0)),
              "intrinsics.npy has non-positive focal lengths"),
    "known-false": ("clean", lambda m, v: _meta(m, geometry__known=False),
                    "camera.npy present but meta.geometry.known is false"),
    "known-true": ("clean", lambda m, v: _without(m, "camera.npy", "intrinsics.npy"),
                   "meta.geometry.known is true but camera.npy is missing"),
    "has-depth": ("clean", lambda m, v: _meta(m, geometry__has_depth=False),
                  "depth.npy present but meta.geometry.has_depth is false"),
    "camera-alone": ("clean", lambda m, v: _without(m, "intrinsics.npy"),
                     "camera.npy and intrinsics.npy must be present together"),
    "fps": ("clean", lambda m, v: {**m, "mp4": v["fps15"]}, "mp4 is 15 fps, expected 16"),
    "size": ("clean", lambda m, v: {**m, "mp4": v["small"]}, "mp4 is 240x416, expected 480x832"),
    "codec": ("clean", lambda m, v: {**m, "mp4": v["mpeg4"]}, "mp4 codec is mpeg4, expected h264"),
    "frames": ("clean", lambda m, v: {**m, "mp4": v["short"]}, "mp4 has 77 frames, expected 81"),
    "degraded-codec": ("occluded", lambda m, v: {**m, "degraded.mp4": v["mpeg4"]},
                       "degraded.mp4 codec is mpeg4, expected h264"),
}


def _write_shard(path: Path, samples: list[tuple[str, Members]]) -> Path:
    with tarfile.open(path, "w", format=tarfile.USTAR_FORMAT) as tar:
        for key, members in samples:
            for ext, data in members.items():
                info = tarfile.TarInfo(f"{key}.{ext}")
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return path


@pytest.fixture(scope="module")
def report(videos, tmp_path_factory):
    """One shard: the two valid controls and every broken case; validated once (videos decoded)."""
    bases = {"clean": _sample("control-clean", videos, False).to_members(),
             "occluded": _sample("control-occluded", videos, True).to_members()}
    samples = [("control-clean", bases["clean"]), ("control-occluded", bases["occluded"])]
    for case, (base, mutate, _) in CASES.items():
        members = _meta(bases[base], key=case)  # each case keyed by its name (meta.key follows, except "meta-key")
        samples.append((case, mutate(members, videos)))
    shard = _write_shard(tmp_path_factory.mktemp("validator") / "cases.tar", samples)
    result = validate_path(shard)
    by_key: dict[str, list[str]] = {}
    for problem in result.problems:
        by_key.setdefault(problem.key, []).append(problem.problem)
    return shard, result, by_key


def test_valid_controls_pass(report) -> None:
    _, result, by_key = report
    assert result.samples == 2 + len(CASES)
    assert "control-clean" not in by_key and "control-occluded" not in by_key, by_key


@pytest.mark.parametrize("case", list(CASES))
def test_each_broken_sample_is_named_with_its_problem(report, case: str) -> None:
    _, _, by_key = report
    expected = CASES[case][2]
    problems = by_key.get(case, [])
    assert any(expected in p for p in problems), f"{case}: expected '{expected}', got {problems}"
    # exactly the broken property is reported (camera-alone also lacks intrinsics' partner by construction)
    assert len(problems) == 1, f"{case}: {problems}"


def test_cli_names_shard_key_and_problem_and_exits_1(report, capsys) -> None:
    shard, _, _ = report
    assert main(["validate", str(shard)]) == 1
    captured = capsys.readouterr()
    assert f"validate: {2 + len(CASES)} samples in 1 shards: FAILED ({len(CASES)} problems)" in captured.out
    lines = captured.err.splitlines()
    assert "cases.tar: degraded-missing: degraded.mp4 missing for interruption kind occluder" in lines, lines
