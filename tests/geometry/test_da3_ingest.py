"""DA3 inside the ingest flow (tiny random-weight model, CPU) on clips that lack geometry."""
from __future__ import annotations

import json
import tarfile

import numpy as np
import pytest
import yaml

from flows.ingest import ingest
from schemas.sample_io import load_npy
from tasks.geometry.da3_tiny import build_tiny_da3
from tasks.publish.manifest import read_manifest
from tests.media import scene_frames, write_video

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]


def test_da3_backend_end_to_end(prefect_server, tmp_path):
    model = build_tiny_da3(tmp_path / "da3-tiny")
    videos = tmp_path / "videos"
    write_video(videos / "walk.mp4", scene_frames(96, seed=3, shift=1), fps=16)
    config = tmp_path / "config.yaml"
    # Random weights give arbitrary poses: the jump gates would reject them, which is not what is tested here.
    config.write_text(yaml.safe_dump({
        "geometry": {"backend": "da3", "model": str(model), "process_res": 140, "subset_frames": 6,
                     "cross_check": False, "max_rotation_step_deg": 180.0, "max_translation_step": 1e6},
        "augment": {"mixture": {"none": 1.0}}, "encode": {"preset": "ultrafast"}}))
    ingest(source=f"local:{videos}", out=str(tmp_path / "out"), config_path=str(config))
    rows = read_manifest(tmp_path / "out" / "manifest.parquet")
    assert [(r.status, r.geometry_backend) for r in rows] == [("accepted", "da3")], [(r.status, r.reason, r.error)
                                                                                      for r in rows]
    shard = next((tmp_path / "out" / "shards").glob("*.tar"))
    with tarfile.open(shard) as tar:
        member = {m.name.split(".", 1)[1]: tar.extractfile(m).read() for m in tar.getmembers()}
    camera, intrinsics, depth = (load_npy(member[k]) for k in ("camera.npy", "intrinsics.npy", "depth.npy"))
    meta = json.loads(member["meta.json"])
    assert camera.shape == (81, 4, 4) and camera.dtype == np.float32
    np.testing.assert_allclose(camera[0], np.eye(4), atol=1e-5)  # frame 0 = identity
    rot = camera[:, :3, :3].astype(np.float64)
    np.testing.assert_allclose(rot @ rot.transpose(0, 2, 1), np.broadcast_to(np.eye(3), rot.shape), atol=1e-3)
    assert intrinsics.shape == (81, 3, 3) and np.all(intrinsics[:, 0, 0] > 0)
    assert depth.shape == (81, 120, 208) and depth.dtype == np.float16 and np.isfinite(depth).all()
    assert meta["geometry"]["backend"] == "da3" and meta["geometry"]["known"] and meta["geometry"]["has_depth"]
    assert meta["geometry"]["translation_scale"] > 0
