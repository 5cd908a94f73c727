"""dl3dv:PATH — a DL3DV-format scene rendered by the synthetic generator (known cameras written as nerfstudio
transforms.json and as a COLMAP text model), ingested back through the real CLI: packed cameras and intrinsics
equal the truth, the pixels agree with them, no estimator runs."""
from __future__ import annotations

import functools
import json
from pathlib import Path

import numpy as np
import pytest

from schemas.cameras import anchor_to_first, normalise_translations, rotation_angle_deg
from schemas.sample_io import decode_sample
from tasks.publish.manifest import read_manifest
from tasks.sources.dl3dv import dl3dv_items, find_scenes, load_track
from tasks.sources.native import resample_indices
from tasks.sources.synthetic import SyntheticClip, project_points, render_clip
from tasks.shards.validate import iter_samples, shard_paths, validate_path
from tests.sources.fixtures import colmap_world, write_dl3dv_scene
from tests.sources.test_synthetic import marker_centroid

CAPTURE_FPS = 24  # DL3DV scenes are denser than 16 fps: ingest must pick frames
SOURCE_HW = (540, 960)  # 16:9 like DL3DV's 960P: normalising to 480x832 resizes and crops


@functools.lru_cache(maxsize=1)
def scene_clip() -> SyntheticClip:
    """122 frames at 24 fps = 5.08 s: one 81-frame window at 16 fps. A pan with some translation."""
    return render_clip(0, 1, "fill", "pan", num_frames=122, height=SOURCE_HW[0], width=SOURCE_HW[1])


def expected_indices() -> np.ndarray:
    """Output frame k at k/16 s shows the source frame nearest in time (ties to the later one)."""
    return np.floor(np.arange(81) * CAPTURE_FPS / 16 + 0.5).astype(int)


def test_resampling_picks_the_nearest_source_frame() -> None:
    assert resample_indices(122, 24, 16).tolist() == expected_indices().tolist()
    assert resample_indices(81, 16, 16).tolist() == list(range(81))
    assert resample_indices(40, 8, 16).tolist() == [min((k + 1) // 2, 39) for k in range(80)]  # ties: the later
    assert len(resample_indices(300, 30, 16, limit=81)) == 81
    assert len(resample_indices(300, 30, 16, max_seconds=2.0)) == 32


@functools.lru_cache(maxsize=1)
def short_clip() -> SyntheticClip:
    """The same camera path, 24 frames at a quarter of the size: enough to read the camera files back."""
    return render_clip(0, 1, "fill", "pan", num_frames=24, height=SOURCE_HW[0] // 4, width=SOURCE_HW[1] // 4)


@pytest.mark.parametrize("fmt", ["nerfstudio", "colmap"])
def test_camera_files_read_back_the_truth(tmp_path: Path, fmt: str) -> None:
    clip = short_clip()
    write_dl3dv_scene(tmp_path / "scene", clip, (fmt,), fps=CAPTURE_FPS)
    track = load_track(tmp_path / "scene", "auto")
    assert track.format == fmt and track.image_hw == clip.frames.shape[1:3] and len(track.images) == len(clip.frames)
    got, truth = anchor_to_first(track.camera_c2w), anchor_to_first(clip.camera_c2w)
    assert rotation_angle_deg(got[:, :3, :3], truth[:, :3, :3]).max() < 1e-3
    got_t, _, got_s = normalise_translations(got)
    truth_t, _, truth_s = normalise_translations(truth)
    assert np.abs(got_t[:, :3, 3] - truth_t[:, :3, 3]).max() < 1e-5
    world_scale = float(np.cbrt(np.linalg.det(colmap_world()[:3, :3]))) if fmt == "colmap" else 1.0
    assert got_s == pytest.approx(truth_s * world_scale, rel=1e-5)  # COLMAP's world is scaled: up to that scale
    # the half-pixel shift between COLMAP/nerfstudio's corner origin and OpenCV's pixel centres is undone
    assert np.abs(track.intrinsics - clip.intrinsics.astype(np.float64)).max() < 1e-4


def test_scenes_are_found_and_a_missing_rate_fails_with_a_reason(tmp_path: Path) -> None:
    from schemas.config import Config
    from tasks.sources.dl3dv import decode_dl3dv

    clip = render_clip(0, 2, "grow", "static", num_frames=6, height=90, width=160)
    write_dl3dv_scene(tmp_path / "a" / "s1", clip, ("nerfstudio",))
    write_dl3dv_scene(tmp_path / "b" / "s2" / "nested", clip, ("colmap",))
    assert [p.name for p in find_scenes(tmp_path)] == ["s1", "nested"]
    items = dl3dv_items(str(tmp_path), Config())
    assert [i.source for i in items] == ["dl3dv", "dl3dv"] and items[0].clip_id != items[1].clip_id
    assert items[0].provenance["license"] == "CC BY-NC 4.0"
    with pytest.raises(ValueError, match="sources.dl3dv.capture_fps"):
        decode_dl3dv(items[0], Config(), None)


@pytest.fixture(scope="module")
def dl3dv_run(prefect_server, tmp_path_factory):
    """Two scenes of the same clip: one with nerfstudio files (fps recorded, depth maps), one with a COLMAP model
    only (the capture rate from the config); `remind-curate ingest --source dl3dv:ROOT` over both."""
    from remind_curate.cli import main

    root = tmp_path_factory.mktemp("dl3dv")
    clip = scene_clip()
    write_dl3dv_scene(root / "scenes" / "ns_scene", clip, ("nerfstudio",), fps=CAPTURE_FPS, depth=True)
    write_dl3dv_scene(root / "scenes" / "colmap_scene", clip, ("colmap",))
    broken = write_dl3dv_scene(root / "scenes" / "broken_scene", render_clip(0, 2, "grow", "static", num_frames=4,
                                                                             height=90, width=160), ("nerfstudio",))
    (broken / "images" / "frame_00003.png").unlink()  # a scene missing an image
    config = root / "config.yaml"
    config.write_text(f"sources: {{dl3dv: {{capture_fps: {CAPTURE_FPS}}}}}\n"
                      "augment: {mixture: {none: 1.0}}\nprefilter: {motion: {min_temporal_occupancy: 0.0}}\n")
    out = root / "out"
    args = ["ingest", "--source", f"dl3dv:{root / 'scenes'}", "--out", str(out), "--config", str(config)]
    code = main(args)
    first = json.loads((out / "metrics.json").read_text())
    assert main(args) == 0  # the same command again: every scene is found finished
    runs = {"first": first, "rerun": json.loads((out / "metrics.json").read_text())}
    samples = {}
    for shard in shard_paths(out):
        for raw in iter_samples(shard):
            sample = decode_sample(raw)
            samples[sample.meta.source.provenance["name"]] = sample
    return out, code, samples, runs


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_ingested_cameras_equal_the_truth(dl3dv_run) -> None:
    out, code, samples, _ = dl3dv_run
    assert code == 0 and validate_path(out).ok
    rows = read_manifest(out / "manifest.parquet")
    accepted = [r for r in rows if r.status == "accepted"]
    assert {(r.source, r.geometry_backend, r.license) for r in accepted} == {("dl3dv", "native", "CC BY-NC 4.0")}
    broken = [r for r in rows if r.status != "accepted"]
    assert [(r.status, r.reason) for r in broken] == [("failed", "decode_error")]
    assert "frame_00003.png not found" in broken[0].error and broken[0].uri.endswith("broken_scene")
    assert set(samples) == {"ns_scene", "colmap_scene"}
    clip, picks = scene_clip(), expected_indices()
    truth = anchor_to_first(clip.camera_c2w[picks])
    truth_t, _, truth_scale = normalise_translations(truth)
    for name, sample in samples.items():
        meta = sample.meta
        assert meta.geometry.known and meta.geometry.backend == "native" and meta.geometry.quality == {}
        assert np.allclose(sample.camera[0], np.eye(4), atol=1e-6)  # frame 0 = identity
        assert rotation_angle_deg(sample.camera[:, :3, :3], truth[:, :3, :3]).max() < 0.01
        got_t, _, scale = normalise_translations(sample.camera)
        assert np.abs(got_t[:, :3, 3] - truth_t[:, :3, 3]).max() < 1e-4  # translation up to the recorded scale
        world_scale = float(np.cbrt(np.linalg.det(colmap_world()[:3, :3]))) if name == "colmap_scene" else 1.0
        assert meta.geometry.translation_scale == pytest.approx(truth_scale * world_scale, rel=1e-4)
        assert meta.source.kind == "dl3dv" and meta.license == "CC BY-NC 4.0" and "DL3DV" in meta.attribution_text


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_intrinsics_follow_the_resize_and_crop_and_reproject_the_markers(dl3dv_run) -> None:
    _, _, samples, _ = dl3dv_run
    clip = scene_clip()
    h, w = SOURCE_HW
    scale = max(480 / h, 832 / w)
    new_h, new_w = max(480, round(h * scale)), max(832, round(w * scale))
    x0, y0 = (new_w - 832) // 2, (new_h - 480) // 2
    k = clip.intrinsics[0].astype(np.float64)
    sx, sy = new_w / w, new_h / h
    expected = np.array([[k[0, 0] * sx, 0, (k[0, 2] + 0.5) * sx - 0.5 - x0],
                         [0, k[1, 1] * sy, (k[1, 2] + 0.5) * sy - 0.5 - y0], [0, 0, 1]])
    picks = expected_indices()
    for name, sample in samples.items():
        assert np.abs(sample.intrinsics - expected).max() < 1e-3
        # The generator's world is its frame 0 (= output frame 0); COLMAP's world is 2.5x larger, and anchoring
        # to frame 0 keeps a reconstruction's scale: the markers sit at 2.5x the distance in that scene's units.
        world_scale = float(np.cbrt(np.linalg.det(colmap_world()[:3, :3]))) if name == "colmap_scene" else 1.0
        world_in_frame0 = clip.points_world * world_scale
        frames = sample.clean_frames()
        uv = project_points(world_in_frame0, sample.camera, sample.intrinsics)
        checked = 0
        for t in (0, 40, 80):
            for m in range(len(world_in_frame0)):
                x, y = uv[t, m]
                if not (16 <= x < 832 - 16 and 16 <= y < 480 - 16):
                    continue
                found = marker_centroid(frames[t], uv[t, m])
                if found is None:  # hidden behind the event's object, or too blurred by H.264 to segment
                    continue
                assert np.hypot(*(found - uv[t, m])) < 0.5, (t, m, found, uv[t, m], picks[t])
                checked += 1
        assert checked >= 6


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_depth_only_where_the_scene_has_it(dl3dv_run) -> None:
    import cv2

    _, _, samples, _ = dl3dv_run
    assert samples["colmap_scene"].depth is None and not samples["colmap_scene"].meta.geometry.has_depth
    sample = samples["ns_scene"]
    assert sample.meta.geometry.has_depth and sample.depth.shape == (81, 120, 208)
    clip, picks = scene_clip(), expected_indices()
    for t in (0, 80):
        src = clip.depth[picks[t]]
        resized = cv2.resize(src, (853, 480), interpolation=cv2.INTER_NEAREST)[:, 10:842]
        truth = cv2.resize(resized, (208, 120), interpolation=cv2.INTER_NEAREST)
        rel = np.abs(sample.depth[t].astype(np.float32) - truth) / truth
        assert np.median(rel) < 0.01


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_report_counts_by_source_and_license_and_a_rerun_redoes_nothing(dl3dv_run) -> None:
    out, _, _, runs = dl3dv_run
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["sources"] == {"dl3dv": 2} and metrics["licenses"] == {"dl3dv / CC BY-NC 4.0": 2}
    assert runs["first"]["clips_processed"] == 3
    assert (runs["rerun"]["clips_processed"], runs["rerun"]["clips_reused"]) == (0, 3)
    report = (out / "report.md").read_text()
    assert "Accepted by source / license" in report and "| dl3dv / CC BY-NC 4.0 | 2 |" in report


def test_lens_distortion_is_undone_on_the_pixels(tmp_path: Path) -> None:
    """A COLMAP OPENCV camera with barrel distortion (DL3DV's model): the images on disk are distorted; decoded
    frames are undistorted to the pinhole the cameras describe (compared away from the borders)."""
    import cv2

    from tasks.sources.dl3dv import track_sequence
    from tasks.sources.native import decode_sequence
    from tasks.video_io import resize_cover_crop

    clip = render_clip(0, 1, "fill", "static", num_frames=4, height=240, width=416)
    scene = write_dl3dv_scene(tmp_path / "scene", clip, ("colmap",))
    cameras = scene / "colmap" / "sparse" / "0" / "cameras.txt"
    k, dist = clip.intrinsics[0].astype(np.float64), np.array([-0.12, 0.03, 0.0, 0.0])
    line = cameras.read_text().splitlines()[-1].split()
    cameras.write_text(" ".join(line[:1] + ["OPENCV"] + line[2:]) + " " + " ".join(map(str, dist)) + "\n")
    ys, xs = np.mgrid[0:240, 0:416].astype(np.float32)
    pts = np.stack([xs.ravel(), ys.ravel()], axis=1)[:, None, :]
    und = cv2.undistortPoints(pts, k, dist, P=k).reshape(240, 416, 2)  # where each distorted pixel looks
    for i, frame in enumerate(clip.frames):
        distorted = cv2.remap(frame, und[..., 0], und[..., 1], cv2.INTER_LINEAR)
        cv2.imwrite(str(scene / "images" / f"frame_{i + 1:05d}.png"), distorted[..., ::-1].copy())
    track = load_track(scene, "auto")
    assert track.distortion is not None and np.allclose(track.distortion[:4], dist)
    frames, _ = decode_sequence(track_sequence(track, 16.0), 16, 480, 832)
    target = resize_cover_crop(clip.frames[0], 480, 832)[0].astype(float)
    centre = (slice(60, 420), slice(100, 732))
    undone = np.abs(frames[0].astype(float) - target)[centre].mean()
    kept = np.abs(resize_cover_crop(cv2.imread(str(track.images[0]))[..., ::-1], 480, 832)[0] - target)[centre]
    assert undone < 4.0 and undone < kept.mean() / 2, (undone, kept.mean())
