"""`remind-curate regenerate`: new augmentations from a finished run's window cache, with no source read, no
filter and no geometry call; clean clips reused byte for byte; every sample linked to its parent; resumable.
Regenerate is ingest from the `cache:OUT` source through the same stages and executor (`ingest --source cache:OUT`
is the same run)."""
from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from benchmarks.regenerate import probed
from schemas.mp4 import decode_mp4
from tasks.publish.manifest import read_manifest
from tasks.publish.previews import read_sample
from tests.faults.helpers import kill_when, prefect_env

CLIPS = 4
# Every test here needs the module's ingest (about a minute on 2 cores): each timeout covers it.
pytestmark = pytest.mark.slow
KINDS = ("none", "camera_loop", "light_toggle", "occluder", "zoom", "exit_entry")


def _mixture(*kinds: str) -> dict[str, float]:
    return {k: (1.0 if k in kinds else 0.0) for k in KINDS}


def _yaml(path: Path, data: dict) -> Path:
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.fixture(scope="module")
def parent(prefect_server, tmp_path_factory):
    """A finished ingest of CLIPS synthetic clips (default mixture), and the upstream calls it made."""
    from flows.ingest import ingest

    out = tmp_path_factory.mktemp("regen-parent") / "out"
    with probed() as probe:
        summary = ingest(source=f"synthetic:{CLIPS}", out=str(out))
    assert summary["status"].get("accepted") == CLIPS, summary
    return out, probe.snapshot()


def _accepted(out: Path) -> dict[str, object]:
    return {r.key: r for r in read_manifest(out / "manifest.parquet") if r.status == "accepted"}


# -- configuration and inputs (no flow run) -------------------------------------------------------------------------
@pytest.mark.timeout(600)
def test_config_is_parent_config_with_overrides_and_cache_bound_sections_are_refused(parent, tmp_path):
    from tasks.sources.cache import RegenerateError, check_output, read_parent, regenerate_config

    out, _ = parent
    config = regenerate_config(out, _yaml(tmp_path / "a.yaml", {"augment": {"mixture": _mixture("zoom")},
                                                                  "seed": 3}))
    assert dict(config.augment.mixture) == _mixture("zoom") and config.seed == 3
    for section, change in (("prefilter", {"prefilter": {"motion": {"frame_step": 2}}}),
                            ("encode", {"encode": {"crf": 30}}), ("geometry", {"geometry": {"backend": "none"}}),
                            ("normalise", {"normalise": {"windows_per_video": 1}})):
        with pytest.raises(RegenerateError, match=section):
            regenerate_config(out, _yaml(tmp_path / f"{section}.yaml", change))
    with pytest.raises(RegenerateError, match="differ"):
        check_output(out, read_parent(out))
    with pytest.raises(RegenerateError, match="no manifest"):
        read_parent(unfinished_copy(out, tmp_path))


@pytest.mark.timeout(600)
def test_cache_source_lists_the_parent_clips_and_refuses_cache_bound_config(parent, tmp_path):
    from schemas.config import load_config
    from tasks.sources.cache import RegenerateError
    from tasks.sources.resolve import SourceSpec, list_sources

    out, _ = parent
    listing = list_sources(f"cache:{out}", load_config(None, {"augment": {"mixture": _mixture("zoom")}}), tmp_path)
    rows = read_manifest(out / "manifest.parquet")
    assert [i.clip_id for i in listing.items] == list(dict.fromkeys(r.clip_id for r in rows))
    assert {i.source for i in listing.items} == {"cache"} and {i.path for i in listing.items} == {str(out.resolve())}
    assert listing.stats == {"parent": str(out.resolve()),
                             "parent_run": json.loads((out / "run.json").read_text())["run_id"]}
    assert sum(len(i.rows) for i in listing.items) == len(rows)
    with pytest.raises(RegenerateError, match="encode.crf"):  # what `ingest --source cache:OUT` may not change
        list_sources(f"cache:{out}", load_config(None, {"encode": {"crf": 30}}), tmp_path)
    with pytest.raises(ValueError, match="needs a path"):
        SourceSpec.parse("cache:")
    with pytest.raises(ValueError, match="no manifest"):
        SourceSpec.parse(f"cache:{unfinished_copy(out, tmp_path)}").preflight()


def unfinished_copy(out: Path, tmp_path: Path) -> Path:
    unfinished = tmp_path / "unfinished"
    unfinished.mkdir()
    shutil.copy(out / "run.json", unfinished / "run.json")
    return unfinished


@pytest.mark.timeout(600)
def test_cached_windows_load_verified_and_corruption_is_a_failed_row(parent, tmp_path):
    from schemas.config import load_config
    from flows.regenerate import REGENERATE
    from tasks.sources.cache import CACHED_STAGES, cache_listing
    from tasks.sources.cache_windows import CacheError, load_cached_clip, load_cached_windows, load_window_dir
    from engine.run import open_run

    out, _ = parent
    copy = tmp_path / "copy"
    shutil.copytree(out, copy, ignore=shutil.ignore_patterns("shards", "previews", ".lock"))
    windows = sorted(p for p in (copy / "cache" / "windows").iterdir())
    good, bad = windows[0], windows[1]
    window, clean = load_window_dir(good)
    record = json.loads((good / "window.json").read_text())
    assert window.window_id == good.name and clean == (good / "clean.mp4").read_bytes()
    assert window.frames.shape == (81, 480, 832, 3) and window.depth.shape == (81, 120, 208)
    assert window.depth.dtype == "float16" and window.camera_c2w.shape == (81, 4, 4)
    assert window.scores == record["scores"] and window.tags == record["tags"]
    assert window.truth.index == record["truth"]["extra"]["index"] and window.truth.state.shape == (81,)
    data = bytearray((bad / "clean.mp4").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (bad / "clean.mp4").write_bytes(bytes(data))
    with pytest.raises(CacheError) as err:
        load_window_dir(bad)
    assert err.value.reason == "cache_corrupt"
    failures: dict[str, str] = {}
    assert [w.window_id for w in load_cached_windows(copy, failures)] == [p.name for p in windows if p != bad]
    assert list(failures) == [bad.name] and "cache_corrupt" in failures[bad.name]
    # In a run: the corrupt window becomes a failed row naming its parent; nothing of it is used.
    config = load_config(copy / "config.yaml")
    run = open_run(tmp_path / "out2", config, "regenerate", copy)
    try:
        items = cache_listing(copy, config)[0]
        clip = load_cached_clip(next(i for i in items if bad.name.startswith(i.clip_id)), run)
        loaded = load_cached_clip(next(i for i in items if good.name.startswith(i.clip_id)), run)
    finally:
        run.release()
    assert clip.windows == [] and [(o.status, o.reason) for o in clip.outcomes] == [("failed", "cache_corrupt")]
    assert clip.outcomes[0].parent_key == bad.name  # its failed row still names the parent sample
    assert not (run.windows / bad.name).exists()
    assert clip.item.source == "synthetic" and clip.frames is None  # windows, not a source to cut
    # A loaded window brings its clean clip and its parent sample; the write stage needs nothing else of the cache.
    (window,) = loaded.windows
    assert window.clean_mp4 == clean and window.parent_key == good.name
    assert window.parent_run == json.loads((copy / "run.json").read_text())["run_id"]
    assert REGENERATE.passed_through == CACHED_STAGES  # the pipeline never starts the stages the cache answers


# -- the flow ------------------------------------------------------------------------------------------------------
@pytest.mark.timeout(900)
def test_regenerate_relinks_reuses_clean_clips_and_resumes(parent, tmp_path):
    from flows.regenerate import regenerate
    from tasks.shards.validate import validate_path

    src, ingest_calls = parent
    assert ingest_calls["source_reads"] >= CLIPS and ingest_calls["filter_calls"] >= CLIPS
    assert ingest_calls["geometry_calls"] >= CLIPS  # the probes do fire on the ingest path
    parent_rows = _accepted(src)
    parent_run = json.loads((src / "run.json").read_text())["run_id"]
    assert any(r.interruption != "light_toggle" for r in parent_rows.values())
    override = _yaml(tmp_path / "light.yaml", {"augment": {"mixture": _mixture("light_toggle")}})
    out = tmp_path / "out2"

    # A real `remind-curate regenerate` process, SIGKILLed once two clips are committed: their ledger entries
    # survive, nothing of the rest is published.
    proc = subprocess.Popen([sys.executable, "-m", "remind_curate.cli", "regenerate", "--from", str(src), "--out",
                             str(out), "--config", str(override)], env=prefect_env(), stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    ledger = out / "cache" / "clips"
    kill_when(proc, lambda: ledger.is_dir() and len(list(ledger.glob("*.json"))) >= 2)
    assert proc.returncode == -signal.SIGKILL
    committed = sorted(p.stem for p in ledger.glob("*.json"))
    assert 2 <= len(committed) < CLIPS, committed  # killed mid-run, not after it
    assert not (out / "manifest.parquet").exists()
    done = len(committed)

    with probed() as probe:
        summary = regenerate(source_out=str(src), out=str(out), config_path=str(override))
    calls = probe.snapshot()
    assert {k: calls[k] for k in ("source_reads", "filter_calls", "geometry_calls")} == {
        "source_reads": 0, "filter_calls": 0, "geometry_calls": 0}
    assert calls["encodes"] == CLIPS - done  # one degraded clip per redone sample; no clean clip re-encoded
    assert summary["clips_reused"] == done and summary["clips_processed"] == CLIPS - done
    # the override draws light_toggle for every clip; a clip that already loops away and back is labelled a
    # (native) camera loop whatever was drawn (tasks/augment/api.py)
    assert summary["status"] == {"accepted": CLIPS} and summary["interruptions"].get("light_toggle", 0) >= 1
    assert set(summary["interruptions"]) <= {"light_toggle", "camera_loop"}, summary["interruptions"]

    rows = _accepted(out)
    assert set(rows) == set(parent_rows)
    record = json.loads((out / "run.json").read_text())
    assert record["kind"] == "regenerate" and record["parent"] == str(src.resolve())
    for key, row in rows.items():
        assert row.parent_key == parent_rows[key].key
        old = read_sample(src / "shards" / parent_rows[key].shard, key)
        new = read_sample(out / "shards" / row.shard, key)
        assert new["mp4"] == old["mp4"]  # the cached clean clip, not a re-encode
        assert new.get("depth.npy") == old.get("depth.npy") and new["camera.npy"] == old["camera.npy"]
        assert "degraded.mp4" in new
        meta, graph = json.loads(new["meta.json"]), json.loads(new["graph.json"])
        assert meta["parent_key"] == key and meta["parent_run"] == parent_run and meta["run_id"] == summary["run_id"]
        assert meta["interruption"] == graph["interruption"]["kind"] == row.interruption
        assert row.interruption == "light_toggle" or (
            row.interruption == "camera_loop" and meta["augment"].get("mode") == "native"), (key, meta["augment"])
        assert (out / "cache" / "windows" / key / "clean.mp4").stat().st_ino == \
            (src / "cache" / "windows" / key / "clean.mp4").stat().st_ino  # hard link, no copy
    report = validate_path(out)
    assert report.ok, report.problems
    # Through engine.executor with INGEST's stages after the cache loader: the cached ones were never started (no
    # setup, so the probes above saw no model load), and every started stage saw every redone clip.
    stages = summary["pipeline"]["stages"]
    assert list(stages) == ["load-cache", "build-graph", "write-samples"]
    assert {name: m["items"] for name, m in stages.items()} == {name: CLIPS - done for name in stages}
    assert set(summary["stage_seconds_per_clip"]) == {"load-cache", "build-graph", "write-samples"}

    # `ingest --source cache:OUT` is the same run: same samples, bit for bit, and a regenerate of OUT.
    from flows.ingest import ingest

    same = tmp_path / "out-ingest-cache"
    assert ingest(source=f"cache:{src}", out=str(same), config_path=str(override))["status"] == {"accepted": CLIPS}
    record = json.loads((same / "run.json").read_text())
    assert record["kind"] == "regenerate" and record["parent"] == str(src.resolve())
    for key, row in _accepted(same).items():
        a, b = read_sample(out / "shards" / rows[key].shard, key), read_sample(same / "shards" / row.shard, key)
        assert set(a) == set(b) and row.interruption == rows[key].interruption
        assert all(a[m] == b[m] for m in a if m not in ("meta.json", "checksums.json", "degraded.mp4")), key
        assert {**json.loads(a["meta.json"]), "run_id": ""} == {**json.loads(b["meta.json"]), "run_id": ""}
        if "degraded.mp4" in a:  # the same frames; x264 with auto threads is not bit-reproducible at 480x832
            degraded_a, degraded_b = decode_mp4(a["degraded.mp4"]), decode_mp4(b["degraded.mp4"])
            assert degraded_a.shape == degraded_b.shape
            assert np.abs(degraded_a.astype(np.int16) - degraded_b).mean() < 0.5, key

    with probed() as probe:  # a rerun of a finished regenerate redoes nothing
        again = regenerate(source_out=str(src), out=str(out), config_path=str(override))
    assert again["clips_reused"] == CLIPS and again["clips_processed"] == 0 and probe.snapshot()["encodes"] == 0
    assert again["shards"] == summary["shards"]


@pytest.mark.timeout(600)
def test_cli_refuses_a_config_that_needs_a_new_ingest(parent, tmp_path, capsys):
    from remind_curate.cli import main

    src, _ = parent
    bad = _yaml(tmp_path / "bad.yaml", {"prefilter": {"motion": {"min_temporal_occupancy": 0.9}}})
    out = tmp_path / "out3"
    assert main(["regenerate", "--from", str(src), "--out", str(out), "--config", str(bad)]) == 2
    assert "prefilter.motion.min_temporal_occupancy" in capsys.readouterr().err
    assert not out.exists()
    # the same rules for `ingest --source cache:OUT`
    assert main(["ingest", "--source", f"cache:{src}", "--out", str(out), "--config", str(bad)]) == 2
    assert "prefilter.motion.min_temporal_occupancy" in capsys.readouterr().err
    assert not out.exists()
