"""openvid:CSV and manifest:FILE through the real CLI: captions, licenses and the dataset's scores reach the shards
and the manifest; broken rows end as failed with their reason; a row's camera file gives native cameras."""
from __future__ import annotations

import functools
import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from schemas.cameras import anchor_to_first, rotation_angle_deg
from schemas.config import Config, load_config
from schemas.sample_io import decode_sample
from tasks.publish.manifest import read_manifest
from tasks.prefilter.dataset_scores import dataset_score_failure
from tasks.sources.manifest_source import manifest_items
from tasks.sources.openvid import openvid_items
from tasks.sources.synthetic import SyntheticClip, render_clip
from tasks.shards.validate import iter_samples, shard_paths, validate_path
from tests.media import write_video
from tests.sources.fixtures import GL_FROM_CV, write_manifest, write_openvid

CAPTION = "Water rises in a clear glass as it is filled, while the camera pans right."
CONFIG = "augment: {mixture: {none: 1.0}}\nprefilter: {motion: {min_temporal_occupancy: 0.0}, " \
         "dataset_scores: {min_motion: 0.01}}\nnormalise: {windows_per_video: 1}\n"


@functools.lru_cache(maxsize=2)
def clip(index: int) -> SyntheticClip:
    return render_clip(0, index, "fill" if index == 0 else "translate", "pan", num_frames=81, height=480, width=832)


def _samples(out: Path) -> dict[str, object]:
    found = {}
    for shard in shard_paths(out):
        for raw in iter_samples(shard):
            sample = decode_sample(raw)
            found[sample.meta.source.uri.rsplit("/", 1)[-1]] = sample
    return found


# -- openvid ----------------------------------------------------------------------------------------------------
OPENVID_ROWS = [
    {"video": "good.mp4", "caption": CAPTION, "aesthetic score": 5.25, "motion score": 0.8,
     "temporal consistency score": 0.991, "camera motion": "pan_right", "frame": 81, "fps": 16, "seconds": 5.06},
    {"video": "still.mp4", "caption": "A still room.", "aesthetic score": 4.9, "motion score": 0.002,
     "temporal consistency score": 0.999, "camera motion": "static", "frame": 81, "fps": 16, "seconds": 5.06},
    {"video": "gone.mp4", "caption": "Not on disk.", "motion score": 0.5},
    {"video": "good.mp4", "caption": "Listed twice.", "motion score": 0.5},
    {"video": "bad.mp4", "caption": "A broken score.", "motion score": "n/a"},
]


def _tiny_frames(seed: int) -> np.ndarray:
    """Listing tests only need files that exist: 4 small frames."""
    return np.random.default_rng(seed).integers(0, 255, (4, 64, 112, 3), dtype=np.uint8)


def _openvid(root: Path, full: bool = True) -> Path:
    write_video(root / "video" / "good.mp4", clip(0).frames if full else _tiny_frames(0), fps=16)
    write_video(root / "video" / "still.mp4", clip(1).frames if full else _tiny_frames(1), fps=16)
    write_video(root / "video" / "bad.mp4", _tiny_frames(2), fps=16)
    return write_openvid(root, OPENVID_ROWS)


def test_openvid_rows_become_items_with_scores_and_reasons(tmp_path: Path) -> None:
    items = openvid_items(str(_openvid(tmp_path, full=False)), Config())
    good, still, gone, twice, bad = items
    assert good.error is None and good.source == "openvid" and good.provenance["caption"] == CAPTION
    assert good.provenance["dataset_scores"] == {"aesthetic": 5.25, "motion": 0.8, "temporal_consistency": 0.991}
    assert good.provenance["dataset_labels"] == {"camera_motion": "pan_right"}
    assert good.provenance["license"] == "CC BY 4.0" and "OpenVid-1M" in good.provenance["attribution"]
    assert "not found" in gone.error and "listed twice" in twice.error and "not a number" in bad.error
    assert len({i.clip_id for i in items}) == len(items)
    with pytest.raises(ValueError, match="no column caption"):
        bad_csv = tmp_path / "other.csv"
        bad_csv.write_text("video,text\na.mp4,hello\n")
        openvid_items(str(bad_csv), Config())


def test_dataset_score_gates() -> None:
    cfg = load_config(None, {"prefilter": {"dataset_scores": {"min_motion": 0.01, "skip_camera_motion": ["static"]}}})
    gates = cfg.prefilter.dataset_scores
    assert dataset_score_failure({"motion": 0.5}, {"camera_motion": "pan_left"}, gates) is None
    assert "motion score 0.002 < min_motion 0.01" in dataset_score_failure({"motion": 0.002}, {}, gates)
    assert "static" in dataset_score_failure({"motion": 0.5}, {"camera_motion": "static"}, gates)
    assert dataset_score_failure({}, {}, gates) is None  # no score: the gate does not apply
    off = Config().prefilter.dataset_scores
    assert dataset_score_failure({"motion": 0.0}, {"camera_motion": "static"}, off) is None


@pytest.fixture(scope="module")
def openvid_run(prefect_server, tmp_path_factory):
    from remind_curate.cli import main

    root = tmp_path_factory.mktemp("openvid")
    csv_path = _openvid(root / "OpenVid-1M")
    (root / "config.yaml").write_text(CONFIG)
    out = root / "out"
    code = main(["ingest", "--source", f"openvid:{csv_path}", "--out", str(out), "--config", str(root / "config.yaml")])
    return out, code


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_openvid_captions_and_scores_reach_shards_and_manifest(openvid_run) -> None:
    out, code = openvid_run
    assert code == 0 and validate_path(out).ok
    rows = {(r.uri.rsplit("/", 1)[-1], r.status): r for r in read_manifest(out / "manifest.parquet")}
    good = rows[("good.mp4", "accepted")]
    assert good.caption == CAPTION and good.caption_source == "dataset" and good.license == "CC BY 4.0"
    assert (good.dataset_aesthetic, good.dataset_motion, good.dataset_temporal_consistency,
            good.dataset_camera_motion) == (5.25, 0.8, 0.991, "pan_right")
    still = rows[("still.mp4", "rejected")]
    assert still.reason == "dataset_score" and "min_motion" in still.error and still.dataset_motion == 0.002
    failed = {r.uri for r in read_manifest(out / "manifest.parquet") if r.status == "failed"}
    assert len(failed) == 3 and any("line=4" in u for u in failed)  # gone.mp4 (CSV line 4), the twice, bad.mp4
    sample = _samples(out)["good.mp4"]
    assert sample.caption == CAPTION and sample.meta.caption_source == "dataset"
    assert sample.meta.dataset_scores == {"aesthetic": 5.25, "motion": 0.8, "temporal_consistency": 0.991}
    assert sample.meta.dataset_labels == {"camera_motion": "pan_right"} and sample.meta.license == "CC BY 4.0"
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["licenses"] == {"openvid / CC BY 4.0": 1}


# -- manifest ---------------------------------------------------------------------------------------------------
def _camera_json(path: Path, c: SyntheticClip) -> Path:
    """The clip's cameras as nerfstudio-style JSON (OpenGL axes, corner-origin principal point), one per frame."""
    k = c.intrinsics[0]
    frames = [{"transform_matrix": (c.camera_c2w[i].astype(np.float64) @ GL_FROM_CV).tolist()}
              for i in range(len(c.frames))]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"w": 832, "h": 480, "fl_x": float(k[0, 0]), "fl_y": float(k[1, 1]),
                                "cx": float(k[0, 2]) + 0.5, "cy": float(k[1, 2]) + 0.5, "frames": frames}))
    return path


def _manifest_folder(root: Path, suffix: str = ".jsonl", full: bool = True) -> Path:
    write_video(root / "videos" / "a.mp4", clip(0).frames if full else _tiny_frames(0), fps=16)
    write_video(root / "videos" / "b.mp4", clip(1).frames if full else _tiny_frames(1), fps=16)
    (root / "videos" / "text.mp4").write_text("this is not a video")
    _camera_json(root / "cams" / "a.json", clip(0))
    good = {"uri": "videos/a.mp4", "caption": CAPTION, "license": "CC BY 4.0", "attribution": "Jane Doe, example.org",
            "event_type": "container_filling", "camera": "cams/a.json"}
    rows = [good, {"uri": "videos/b.mp4"}, {"caption": "no uri"}, {"uri": "videos/missing.mp4"},
            {"uri": "videos/b.mp4", "event_type": "not_a_real_event"}, {"uri": "videos/b.mp4", "camera": "nope.json"},
            dict(good), {"uri": "videos/text.mp4"}]
    if suffix == ".jsonl":
        rows.insert(3, "{this is not json")
    return write_manifest(root / f"collection{suffix}", rows)


@pytest.mark.parametrize("suffix", [".jsonl", ".csv", ".parquet"])
def test_manifest_rows_become_items_or_failures(tmp_path: Path, suffix: str) -> None:
    items = manifest_items(str(_manifest_folder(tmp_path, suffix, full=False)), Config(), tmp_path / "fetched")
    by_error = [i.error or "" for i in items]
    assert items[0].error is None and items[0].provenance["camera_file"].endswith("a.json")
    assert items[0].provenance["event_type"] == "container_filling" and items[0].provenance["license"] == "CC BY 4.0"
    assert items[1].error is None and items[1].provenance["license"] == "unknown"
    for needle in ("no 'uri'", "missing.mp4 not found", "unknown event_type", "camera file nope.json not found",
                   "duplicate of row 0"):
        assert any(needle in e for e in by_error), (needle, by_error)
    assert (suffix == ".jsonl") == any("not JSON" in e for e in by_error)
    assert len({i.clip_id for i in items}) == len(items)


@pytest.fixture(scope="module")
def manifest_run(prefect_server, tmp_path_factory):
    from remind_curate.cli import main

    root = tmp_path_factory.mktemp("manifest")
    manifest = _manifest_folder(root / "collection")
    (root / "config.yaml").write_text(CONFIG)
    out = root / "out"
    code = main(["ingest", "--source", f"manifest:{manifest}", "--out", str(out),
                 "--config", str(root / "config.yaml")])
    return out, code


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_manifest_mixed_rows(manifest_run) -> None:
    out, code = manifest_run
    assert code == 0 and validate_path(out).ok
    rows = read_manifest(out / "manifest.parquet")
    accepted = {r.uri.rsplit("/", 1)[-1]: r for r in rows if r.status == "accepted"}
    assert set(accepted) == {"a.mp4", "b.mp4"}
    a = accepted["a.mp4"]
    assert (a.source, a.license, a.attribution, a.event_type, a.geometry_backend) == (
        "manifest", "CC BY 4.0", "Jane Doe, example.org", "container_filling", "native")
    assert a.caption == CAPTION and a.caption_source == "dataset"
    assert accepted["b.mp4"].license == "unknown" and accepted["b.mp4"].geometry_backend == "classical"
    failed = [r for r in rows if r.status == "failed"]
    errors = " | ".join(r.error or "" for r in failed)
    for needle in ("no 'uri'", "not JSON", "missing.mp4 not found", "unknown event_type", "nope.json not found",
                   "duplicate of row 0"):
        assert needle in errors, (needle, errors)
    assert any(r.reason == "decode_error" and r.uri.endswith("text.mp4") for r in failed)
    assert all(r.error and r.reason for r in failed)
    sample = _samples(out)["a.mp4"]
    truth = anchor_to_first(clip(0).camera_c2w)
    assert rotation_angle_deg(sample.camera[:, :3, :3], truth[:, :3, :3]).max() < 0.01
    assert np.abs(sample.intrinsics - clip(0).intrinsics).max() < 1e-3  # 832x480 in, 832x480 out
    assert sample.meta.attribution_text == "Jane Doe, example.org" and sample.caption == CAPTION
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["sources"] == {"manifest": 2}
    assert metrics["licenses"] == {"manifest / CC BY 4.0": 1, "manifest / unknown": 1}


def test_mixture_sampler_weights_by_source() -> None:
    """The training sampler draws by meta.source.kind: the new kinds are ordinary mixture categories."""
    from training.config import MixtureConfig
    from training.data import MixtureSampler

    rows = [{"source": s, "event_group": "none", "interruption": "none", "i": i}
            for i, s in enumerate(["openvid"] * 30 + ["dl3dv"] * 10 + ["synthetic"] * 10)]
    cfg = MixtureConfig(sources={"openvid": 1.0, "dl3dv": 3.0, "synthetic": 0.0}, buffer_size=50)
    sampler = MixtureSampler(lambda: rows, cfg, seed=0)
    drawn = [next(sampler)["source"] for _ in range(2000)]
    assert "synthetic" not in drawn
    assert 0.68 < drawn.count("dl3dv") / len(drawn) < 0.82  # 3:1 by weight although openvid is 3x as common


def test_a_video_with_an_npz_camera_file_keeps_its_cameras(tmp_path: Path) -> None:
    """A 24 fps video with OpenCV cameras in .npz, intrinsics given for the full 832x480 frame of a video stored at
    half size: resampled to 16 fps with each frame's own camera, intrinsics scaled to the file, then normalised."""
    from tasks.records import SourceItem
    from tasks.sources.with_cameras import decode_with_cameras

    c = render_clip(0, 3, "rotate", "pan", num_frames=36, height=240, width=416)
    write_video(tmp_path / "v.mp4", c.frames, fps=24)
    k = c.intrinsics[0].astype(np.float64)  # pixel centres at integers: doubling the frame maps c -> 2c + 0.5
    k_full = np.array([[2 * k[0, 0], 0, 2 * k[0, 2] + 0.5], [0, 2 * k[1, 1], 2 * k[1, 2] + 0.5], [0, 0, 1]])
    np.savez(tmp_path / "v.npz", c2w=c.camera_c2w, K=k_full, hw=np.array([480, 832]))
    item = SourceItem("manifest-x", "manifest", str(tmp_path / "v.mp4"), str(tmp_path / "v.mp4"),
                      {"camera_file": str(tmp_path / "v.npz")})
    frames, native, facts = decode_with_cameras(item, Config(), None)
    picks = np.floor(np.arange(len(frames)) * 24 / 16 + 0.5).astype(int)
    assert facts["source_fps"] == 24 and len(frames) == 24 and native.source_index.tolist() == picks.tolist()
    assert rotation_angle_deg(native.camera_c2w[:, :3, :3], c.camera_c2w[picks, :3, :3]).max() < 1e-4
    # 832x480 -> the 416x240 file -> normalised back to 832x480: the same intrinsics
    assert np.abs(native.intrinsics - k_full).max() < 1e-6
    assert np.abs(frames[5].astype(float) - cv2.resize(c.frames[picks[5]], (832, 480))).mean() < 8  # that frame
