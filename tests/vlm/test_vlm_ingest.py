"""The VLM stage inside the ingest flow, through both backends; its scores and reasons reach the manifest."""
from __future__ import annotations

import json
import tarfile

import pytest
import yaml

from flows.ingest import ingest
from tasks.publish.manifest import read_manifest
from tests.servers.openai_server import Reply, ScriptedOpenAIServer

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

FAST = {"augment": {"mixture": {"none": 1.0}}, "encode": {"preset": "ultrafast"}}


def _config(tmp_path, vlm: dict) -> str:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump({**FAST, "vlm": {"enabled": True, "num_frames": 4, "min_pixels": 4096,
                                                     "max_pixels": 16384, **vlm}}))
    return str(path)


def test_transformers_backend_tiny_model_in_the_flow(prefect_server, tiny_bundle, tmp_path):
    """Random weights emit junk: every window must end rejected as unparseable, never judged."""
    config = _config(tmp_path, {"backend": "transformers", "model": str(tiny_bundle), "max_new_tokens": 16,
                                "batch_size": 2})
    summary = ingest(source="synthetic:2", out=str(tmp_path / "out"), config_path=config)
    rows = read_manifest(tmp_path / "out" / "manifest.parquet")
    assert len(rows) == 2 and summary["status"] == {"rejected": 2}
    assert {(r.status, r.reason, r.vlm_decision) for r in rows} == {("rejected", "vlm_unparseable", "rejected")}


def test_openai_backend_in_the_flow_scores_reach_manifest_and_meta(prefect_server, tmp_path):
    good = json.dumps({"scene_cut": False, "event_type": "container_filling", "spatial_occupancy": 0.4,
                       "temporal_occupancy": 0.9, "confidence": 0.8,
                       "caption": "A glass fills with water; the water level rises steadily."})
    low = json.dumps({"scene_cut": False, "event_type": "ball_rolling", "spatial_occupancy": 0.02,
                      "temporal_occupancy": 0.9, "confidence": 0.9, "caption": "A ball rolls; its position moves right."})
    script = [Reply(good), Reply(f"Sure! Here is my answer:\n```json\n{low}\n```"), Reply(status=500, body="boom")]
    with ScriptedOpenAIServer(script, default=Reply(status=500, body="down")) as server:
        config = _config(tmp_path, {"backend": "openai", "base_url": server.base_url, "model": "served-qwen3-vl",
                                    "batch_size": 1, "concurrency": 1, "max_retries": 1, "retry_backoff_s": 0.01,
                                    "retry_backoff_max_s": 0.02})
        ingest(source="synthetic:3", out=str(tmp_path / "out"), config_path=config)
        models = {r.model for r in server.requests}
    assert models == {"served-qwen3-vl"}
    rows = {r.clip_id: r for r in read_manifest(tmp_path / "out" / "manifest.parquet")}
    accepted, rejected, failed = (rows[f"synthetic-0-0000{i}"] for i in range(3))
    assert accepted.status == "accepted" and accepted.vlm_decision == "accepted"
    assert accepted.scores["vlm_confidence"] == 0.8 and "container_filling" in accepted.tags
    assert accepted.caption.startswith("A glass fills")
    assert (rejected.status, rejected.reason) == ("rejected", "vlm_low_spatial_occupancy")
    assert rejected.scores["vlm_spatial_occupancy"] == 0.02
    assert failed.status == "failed" and failed.reason.startswith("vlm_error")
    shard = next((tmp_path / "out" / "shards").glob("*.tar"))
    with tarfile.open(shard) as tar:
        meta = json.loads(tar.extractfile(f"{accepted.key}.meta.json").read())
        caption = tar.extractfile(f"{accepted.key}.txt").read().decode()
    assert meta["vlm"]["decision"] == "accepted" and meta["vlm"]["model"] == "served-qwen3-vl"
    assert meta["vlm"]["prompt_version"] == "judge-v2" and caption == accepted.caption
    assert meta["caption_source"] == "vlm" and meta["vlm"]["event_types"]["vlm"] == "container_filling"
    report = (tmp_path / "out" / "report.md").read_text()  # the stratified audit: one stratum per decision/reason
    assert "VLM audit" in report and "vlm_low_spatial_occupancy" in report and "vlm_error" in report
    assert f"previews/vlm/{accepted.clip_id}-w00.jpg" in report
    assert (tmp_path / "out" / "previews" / "vlm" / f"{rejected.clip_id}-w00.jpg").exists()
