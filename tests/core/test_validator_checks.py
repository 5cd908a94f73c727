"""Every check of the sample validator, one bad sample each: `validate` must name the key and the problem.

A shard holds two valid samples (a clean one and an occluded one, 480x832 H.264 at 16 fps, cameras, depth,
checksums) and, per case, one sample broken in exactly one way. The valid ones must pass (the control); each broken
one must be reported with its key and a sentence naming what is wrong, by its check and no other. The table covers
the validator's registry (``schemas.validation.CHECKS``): a check without a case fails
``test_every_registered_check_has_a_case``, and removing a check fails its case.
"""
from __future__ import annotations

import io
import json
import tarfile
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from remind_curate.cli import main
from schemas.constants import DEPTH_HEIGHT, DEPTH_WIDTH, FPS, HEIGHT, NUM_FRAMES, WIDTH
from schemas.sample import GeometryMeta, SampleMeta, SourceInfo
from schemas.sample_io import Sample, json_bytes, npy_bytes, with_checksums
from schemas.validation import CHECKS
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


def _array(members: Members, ext: str, edit: Callable[[np.ndarray], np.ndarray | None] | None,
           dtype: type | None = None) -> Members:
    array = np.load(io.BytesIO(members[ext])).copy()
    edited = edit(array) if edit is not None else None
    array = array if edited is None else edited
    return {**members, ext: npy_bytes(array if dtype is None else array.astype(dtype))}


def _without(members: Members, *exts: str) -> Members:
    return {k: v for k, v in members.items() if k not in exts}


def _set(array: np.ndarray, index: tuple, value: float) -> None:
    array[index] = value


def _edit_graph(members: Members, edit: Callable[[dict], None]) -> Members:
    graph = json.loads(members["graph.json"])
    edit(graph)
    return {**members, "graph.json": json_bytes(graph)}


def _pickled() -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, np.array([{"x": 1}, None], dtype=object), allow_pickle=True)
    return buffer.getvalue()


def _camera_pair(members: Members) -> Members:
    return {**members, "degraded_camera.npy": members["camera.npy"],
            "degraded_intrinsics.npy": members["intrinsics.npy"]}


@dataclass(frozen=True)
class Case:
    check: str  # the registered check this sample breaks, and no other
    base: str  # "clean" | "occluded"
    mutate: Callable[[Members, dict], Members]
    expected: str
    sign: bool = True  # checksums.json rewritten after the change (else the change is the checksum case itself)


def _signed(members: Members) -> Members:
    return with_checksums({k: v for k, v in members.items() if k != "checksums.json"})


CASES: dict[str, Case] = {case_name: case for case_name, case in {
    "forbidden-type": Case("forbidden-type", "clean", lambda m, v: {**m, "evil.pickle": b"x"},
                           "entry 'evil.pickle' has a forbidden type"),
    "required-entry": Case("required-entry", "clean", lambda m, v: _without(m, "mp4"),
                           "missing required entry 'mp4'"),
    "document-json": Case("document-json", "clean", lambda m, v: {**m, "meta.json": b"[" * 65 + b"]" * 65},
                          "meta.json: JSON nested 65 levels deep, more than the 64 allowed"),
    "checksums-format": Case("checksums-format", "clean", lambda m, v: {**m, "checksums.json": b'{"md5": {}}'},
                             'checksums.json: not a {"sha256": {entry: digest}} object', sign=False),
    "checksums-required": Case("checksums-required", "clean", lambda m, v: _without(m, "checksums.json"),
                               "checksums.json is missing: it is required from schema 1.1.0", sign=False),
    "checksums-unlisted": Case("checksums-unlisted", "clean", lambda m, v: {**m, "notes.txt": b"hi"},
                               "notes.txt: not covered by checksums.json", sign=False),
    "checksums-absent": Case("checksums-absent", "clean", lambda m, v: _without(m, "txt"),
                             "txt: listed in checksums.json but absent", sign=False),
    "checksums-digest": Case("checksums-digest", "clean", lambda m, v: {**m, "txt": b"a square moving left"},
                             "txt: content differs from its checksums.json digest", sign=False),
    "unknown-entry": Case("unknown-entry", "clean", lambda m, v: {**m, "future.npy": _pickled()},
                          "future.npy: pickled object array (dtype object): not loaded, nothing executed"),
    "npy-plain": Case("npy-plain", "clean", lambda m, v: {**m, "camera.npy": _pickled()},
                      "camera.npy: not a plain .npy array (pickled object array"),
    "npy-dtype": Case("npy-dtype", "clean", lambda m, v: _array(m, "camera.npy", None, np.float64),
                      "camera.npy dtype is float64, expected float32"),
    "npy-shape": Case("npy-shape", "clean", lambda m, v: _array(m, "intrinsics.npy", lambda a: a[:80]),
                      "intrinsics.npy shape is (80, 3, 3), expected (81, 3, 3)"),
    "nan-camera": Case("npy-finite", "clean", lambda m, v: _array(m, "camera.npy", lambda a: _set(a, (9, 2, 3),
                                                                                                 np.nan)),
                       "camera.npy has non-finite values"),
    "inf-depth": Case("npy-finite", "clean", lambda m, v: _array(m, "depth.npy", lambda a: _set(a, (3, 5, 5),
                                                                                               np.inf)),
                      "depth.npy has non-finite values"),
    "text-utf8": Case("text-utf8", "clean", lambda m, v: {**m, "txt": b"caf\xe9"}, "txt: not UTF-8 text"),
    "video-decodes": Case("video-decodes", "clean", lambda m, v: {**m, "mp4": b"\0\0\0\x08ftyp" * 10},
                          "mp4 does not decode"),
    "frames": Case("video-frames", "clean", lambda m, v: {**m, "mp4": v["short"]}, "mp4 has 77 frames, expected 81"),
    "fps": Case("video-fps", "clean", lambda m, v: {**m, "mp4": v["fps15"]}, "mp4 is 15 fps, expected 16"),
    "size": Case("video-size", "clean", lambda m, v: {**m, "mp4": v["small"]}, "mp4 is 240x416, expected 480x832"),
    "codec": Case("video-codec", "clean", lambda m, v: {**m, "mp4": v["mpeg4"]}, "mp4 codec is mpeg4, expected h264"),
    "degraded-codec": Case("video-codec", "occluded", lambda m, v: {**m, "degraded.mp4": v["mpeg4"]},
                           "degraded.mp4 codec is mpeg4, expected h264"),
    "schema-version": Case("schema-version", "clean", lambda m, v: _meta(m, schema_version="2.0.0"),
                           "meta.json: schema_version 2.0.0 is a newer major version"),
    "model": Case("model", "clean", lambda m, v: _meta(m, window=-1),
                  "meta.json: window: Input should be greater than or equal to 0"),
    "meta-key": Case("meta-key", "clean", lambda m, v: _meta(m, key="someone-else"),
                     "meta.json key 'someone-else' differs from __key__"),
    "graph-model": Case("model", "clean", lambda m, v: _edit_graph(m, lambda g: g.update(num_frames=80)),
                        "graph.json: Value error, num_frames is 80, expected 81"),  # the model's own invariants
    "graph-alignment": Case("graph-alignment", "occluded",
                            lambda m, v: _edit_graph(m, lambda g: g["interruption"].update(start_frame=22)),
                            "graph.json: interruption starts at frame 22, inside chunk 2"),
    "graph-gaps": Case("graph-gaps", "occluded",
                       lambda m, v: _edit_graph(m, lambda g: g["temporal_gaps"][0].update(
                           frames=g["temporal_gaps"][0]["frames"] + 1)), "graph.json: temporal gap"),
    "graph-hidden": Case("graph-hidden", "occluded", lambda m, v: _edit_graph(m, lambda g: g.pop("hidden_max_visibility")),
                         "graph.json: hidden_max_visibility is missing"),
    "degraded-text": Case("degraded-text", "occluded", lambda m, v: _without(m, "degraded.txt"),
                          "degraded.txt must be present exactly when degraded.mp4 is"),
    "meta-interruption": Case("meta-interruption", "occluded", lambda m, v: _meta(m, interruption="zoom"),
                              "meta.json interruption 'zoom' differs from graph's 'occluder'"),
    "degraded-extra": Case("degraded-extra", "clean", lambda m, v: {**m, "degraded.mp4": v["good"],
                                                                    "degraded.txt": b"occluded"},
                           "degraded.mp4 present but the interruption kind is none"),
    "degraded-missing": Case("degraded-missing", "occluded", lambda m, v: _without(m, "degraded.mp4", "degraded.txt"),
                             "degraded.mp4 missing for interruption kind occluder"),
    "camera-pair": Case("camera-pair", "clean", lambda m, v: _without(m, "intrinsics.npy"),
                        "camera.npy and intrinsics.npy must be present together"),
    "degraded-camera-pair": Case("degraded-camera-pair", "occluded",
                                 lambda m, v: _without(_camera_pair(m), "degraded_intrinsics.npy"),
                                 "degraded_camera.npy and degraded_intrinsics.npy must be present together"),
    "degraded-camera-video": Case("degraded-camera-video", "clean", lambda m, v: _camera_pair(m),
                                  "degraded_camera.npy present without degraded.mp4"),
    "frame0": Case("camera-frame0", "clean", lambda m, v: _array(m, "camera.npy", lambda a: _set(a, (0, 0, 3), 0.5)),
                   "camera.npy frame 0 is not the identity"),
    "orthonormal": Case("camera-orthonormal", "clean",
                        lambda m, v: _array(m, "camera.npy", lambda a: _set(a, (40, 1, 1), 1.2)),
                        "camera.npy rotations are not orthonormal"),
    "bottom-row": Case("camera-bottom-row", "clean",
                       lambda m, v: _array(m, "camera.npy", lambda a: _set(a, (7, 3, 0), 0.2)),
                       "camera.npy bottom rows are not [0, 0, 0, 1]"),
    "focal": Case("intrinsics-focal", "clean", lambda m, v: _array(m, "intrinsics.npy", lambda a: _set(a, (12, 1, 1),
                                                                                                      0.0)),
                  "intrinsics.npy has non-positive focal lengths"),
    "has-depth": Case("depth-flag", "clean", lambda m, v: _meta(m, geometry__has_depth=False),
                      "depth.npy present but meta.geometry.has_depth is false"),
    "known-false": Case("geometry-known", "clean", lambda m, v: _meta(m, geometry__known=False),
                        "camera.npy present but meta.geometry.known is false"),
    "known-true": Case("geometry-known", "clean", lambda m, v: _without(m, "camera.npy", "intrinsics.npy"),
                       "meta.geometry.known is true but camera.npy is missing"),
    "caption-none-txt": Case("caption-none-txt", "clean",
                             lambda m, v: _meta(m, caption_source="none", caption_note="vlm_off"),
                             "txt present but meta.caption_source is none"),
    "caption-none-note": Case("caption-none-note", "clean",
                              lambda m, v: _without(_meta(m, caption_source="none"), "txt"),
                              "meta.caption_source is none without a caption_note saying why"),
    "caption-txt": Case("caption-txt", "clean", lambda m, v: _without(_meta(m, caption_source="vlm"), "txt"),
                        "meta.caption_source is vlm but txt is missing"),
}.items()}


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
    bases = {"clean": _signed(_sample("control-clean", videos, False).to_members()),
             "occluded": _signed(_sample("control-occluded", videos, True).to_members())}
    samples = [("control-clean", bases["clean"]), ("control-occluded", bases["occluded"])]
    for name, case in CASES.items():
        members = _signed(_meta(bases[case.base], key=name))  # each case keyed by its name (meta.key follows)
        members = case.mutate(members, videos)
        samples.append((name, _signed(members) if case.sign else members))
    shard = _write_shard(tmp_path_factory.mktemp("validator") / "cases.tar", samples)
    result = validate_path(shard)
    by_key: dict[str, list[tuple[str, str]]] = {}
    for problem in result.problems:
        by_key.setdefault(problem.key, []).append((problem.check, problem.problem))
    return shard, result, by_key


def test_valid_controls_pass(report) -> None:
    _, result, by_key = report
    assert result.samples == 2 + len(CASES)
    assert "control-clean" not in by_key and "control-occluded" not in by_key, by_key


@pytest.mark.parametrize("name", list(CASES))
def test_each_broken_sample_is_named_with_its_problem(report, name: str) -> None:
    """The table: each case breaks its check's rule and no other (so removing that check fails this case)."""
    _, _, by_key = report
    case, found = CASES[name], by_key.get(name, [])
    assert any(case.expected in problem for _, problem in found), f"{name}: expected '{case.expected}', got {found}"
    assert {check for check, _ in found} == {case.check}, f"{name}: {found}"


def test_every_registered_check_has_a_case() -> None:
    """A check added to the registry without a sample that breaks it fails here."""
    assert set(CHECKS) == {case.check for case in CASES.values()}, set(CHECKS) ^ {c.check for c in CASES.values()}


def test_cli_names_shard_key_and_problem_and_exits_1(report, capsys) -> None:
    shard, result, _ = report
    assert main(["validate", str(shard)]) == 1
    captured = capsys.readouterr()
    assert f"validate: {2 + len(CASES)} samples in 1 shards: FAILED ({len(result.problems)} problems)" in captured.out
    lines = captured.err.splitlines()
    assert "cases.tar: degraded-missing: degraded.mp4 missing for interruption kind occluder" in lines, lines
