"""The dataset card of a real OUT (README.md in the Hugging Face form, info.json after LeRobot's): its front matter
parses, its counts are the manifest's, info.json describes exactly what a sample holds, and the shards load from the
card through the `datasets` library's WebDataset builder (and through `webdataset`)."""
from __future__ import annotations

import glob
import io
import json
import tarfile
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import yaml

from schemas.config import Config, load_config
from schemas.constants import NUM_FRAMES
from schemas.manifest import ManifestRow
from schemas.mp4 import decode_mp4
from schemas.sample_io import decode_sample
from schemas.version import SCHEMA_VERSION
from tasks.publish.card import (build_info, hf_license, published_rows, render_card, size_category,
                                write_dataset_card)
from tasks.publish.manifest import read_manifest

CLIPS = 4
# Samples with and without an interruption hold different optional entries, which is what the card must declare.
CONFIG = {"augment": {"mixture": {"none": 1.0, "zoom": 1.0}}, "encode": {"preset": "ultrafast"}}


@pytest.fixture(scope="module")
def run_out(prefect_server, tmp_path_factory) -> Path:
    from flows.ingest import ingest

    root = tmp_path_factory.mktemp("card")
    config = root / "config.yaml"
    config.write_text(yaml.safe_dump(CONFIG))
    out = root / "out"
    summary = ingest(source=f"synthetic:{CLIPS}", out=str(out), config_path=str(config))
    assert summary["status"] == {"accepted": CLIPS}
    return out


def _inputs(out: Path):
    rows = read_manifest(out / "manifest.parquet")
    config = load_config(out / "config.yaml")
    shards = {p.name: p.stat().st_size for p in sorted((out / "shards").glob("*.tar"))}
    return rows, config, shards


@pytest.fixture(scope="module")
def card(run_out: Path, tmp_path_factory) -> Path:
    """The card written by write_dataset_card into a folder beside the run's shards (the flow's own card, if any,
    stays untouched for test_ingest_writes_the_card)."""
    folder = tmp_path_factory.mktemp("card-folder")
    (folder / "shards").symlink_to(run_out / "shards")
    write_dataset_card(folder, *_inputs(run_out))
    return folder


def _front_matter(readme: Path) -> tuple[dict, str]:
    text = readme.read_text()
    assert text.startswith("---\n")
    front, body = text[4:].split("\n---\n", 1)
    return yaml.safe_load(front), body


def _samples(shards: list[str]) -> dict[str, dict[str, bytes]]:
    samples: dict[str, dict[str, bytes]] = {}
    for shard in shards:
        with tarfile.open(shard) as tar:
            for member in tar:
                key, entry = member.name.split(".", 1)
                samples.setdefault(key, {})[entry] = tar.extractfile(member).read()
    return samples


def test_license_ids_and_size_buckets() -> None:
    assert hf_license("CC BY-NC 4.0") == "cc-by-nc-4.0" and hf_license("CC BY 4.0") == "cc-by-4.0"
    assert hf_license("CC0 1.0") == "cc0-1.0" and hf_license("apache_2.0") == "apache-2.0"
    assert [hf_license(n) for n in ("Pexels License", "generated", "unknown (local file)", None)] == ["other"] * 4
    assert [size_category(n) for n in (0, 999, 1000, 9999, 10_000, 2_000_000)] == [
        "n<1K", "n<1K", "1K<n<10K", "1K<n<10K", "10K<n<100K", "1M<n<10M"]


def _row(key: str | None, status: str = "accepted", shard: str | None = "shard-000000.tar") -> ManifestRow:
    return ManifestRow(run_id="r", clip_id="c", source="synthetic", uri="u", status=status, shard=shard, key=key,
                       interruption="none", config_hash="h")


ROWS = [_row("synthetic-0-00000-w00"), _row("synthetic-0-00001-w00"), _row(None, "rejected", None)]


def test_info_counts_frames_and_the_versions_of_an_ingest() -> None:
    info = build_info(ROWS, Config(), {"shard-000000.tar": 10})
    assert info["total_samples"] == 2 and info["total_frames"] == 2 * NUM_FRAMES == 2 * info["frames_per_sample"]
    assert info["config_hash"] == Config().config_hash and info["schema_version"] == SCHEMA_VERSION
    assert info["sample_schema_versions"] == {SCHEMA_VERSION: 2} and info["counts_from"] == "manifest.parquet"


def test_card_of_migrated_samples_says_what_they_are(tmp_path: Path) -> None:
    """A migrated OUT: the recorded config hash (not a re-hash), the versions its samples are stamped with, and,
    without a manifest, counts derived from the samples themselves."""
    write_dataset_card(tmp_path, ROWS[:2], "d69137aa4bcbad8c", {"shard-000000.tar": 10}, versions={"1.0.0": 2})
    info = json.loads((tmp_path / "info.json").read_text())
    assert info["config_hash"] == "d69137aa4bcbad8c" and info["sample_schema_versions"] == {"1.0.0": 2}
    assert info["schema_version"] == SCHEMA_VERSION and info["total_frames"] == 2 * NUM_FRAMES
    front, body = _front_matter(tmp_path / "README.md")
    assert "config hash `d69137aa4bcbad8c`" in body and "stamped 1.0.0: 2" in body
    write_dataset_card(tmp_path, ROWS[:2], None, {"shard-000000.tar": 10}, versions={"1.0.0": 2},
                       from_manifest=False)
    info = json.loads((tmp_path / "info.json").read_text())
    assert info["config_hash"] is None and info["counts_from"] == "meta.json"
    _, body = _front_matter(tmp_path / "README.md")
    assert "config hash unknown" in body and "manifest.parquet" not in body.split("## Counts")[0]


def test_ingest_writes_the_card(run_out: Path) -> None:
    """The flow writes README.md and info.json after the manifest, from the rows it wrote."""
    rows, config, shards = _inputs(run_out)
    assert (run_out / "README.md").read_text() == render_card(rows, config, shards)
    assert json.loads((run_out / "info.json").read_text())["total_samples"] == CLIPS


def test_front_matter_and_counts_are_the_manifests(card: Path, run_out: Path) -> None:
    front, body = _front_matter(card / "README.md")
    assert front["license"] == ["other"]  # synthetic clips: license "generated"
    assert front["size_categories"] == ["n<1K"]
    assert "image-to-video" in front["task_categories"] and "text-to-video" in front["task_categories"]
    assert front["configs"] == [{"config_name": "default", "data_files": [{"split": "train", "path": "shards/*.tar"}]}]
    from huggingface_hub import DatasetCard

    assert DatasetCard((card / "README.md").read_text()).data.to_dict()["configs"] == front["configs"]
    rows = published_rows(read_manifest(run_out / "manifest.parquet"))
    for title, counts in (("interruption", Counter(r.interruption for r in rows)),
                          ("event group", Counter(r.event_group for r in rows)),
                          ("source", Counter(r.source for r in rows)), ("license", Counter(r.license for r in rows))):
        table = body.split(f"### By {title}\n\n", 1)[1].split("\n\n", 1)[0].splitlines()[2:]
        assert {cells[0]: int(cells[1]) for cells in (line.strip("| ").split(" | ") for line in table)} == counts


def test_info_lists_every_member_of_a_real_sample(card: Path) -> None:
    info = json.loads((card / "info.json").read_text())
    samples = _samples(sorted(glob.glob(str(card / "shards" / "*.tar"))))
    assert info["total_samples"] == len(samples) == CLIPS and info["total_shards"] == len(info["shards"]) == 1
    features = info["features"]
    assert len({frozenset(members) for members in samples.values()}) > 1  # optional entries do differ here
    seen: set[str] = set()
    for key, members in samples.items():
        assert set(members) <= set(features), (key, set(members) - set(features))
        assert {name for name, f in features.items() if f["required"]} <= set(members), key
        seen |= set(members)
        for name, data in members.items():
            if name.endswith(".npy"):
                array = np.load(io.BytesIO(data), allow_pickle=False)
                assert (str(array.dtype), list(array.shape)) == (features[name]["dtype"], features[name]["shape"])
    frames = decode_mp4(next(iter(samples.values()))["mp4"])
    assert (str(frames.dtype), list(frames.shape)) == (features["mp4"]["info"]["decoded_dtype"],
                                                        features["mp4"]["shape"])
    assert info["fps"] == features["mp4"]["info"]["video.fps"] and info["frames_per_sample"] == frames.shape[0]
    assert info["total_frames"] == len(samples) * frames.shape[0]
    assert {"mp4", "degraded.mp4", "meta.json", "graph.json", "checksums.json", "camera.npy", "txt"} <= seen


def test_datasets_loads_the_shards_from_the_card(card: Path, monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    datasets = pytest.importorskip("datasets")
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    ds = datasets.load_dataset(str(card), split="train", streaming=True, cache_dir=str(tmp_path))
    ds = ds.cast_column("mp4", datasets.Video(decode=False)).cast_column("degraded.mp4", datasets.Video(decode=False))
    features = json.loads((card / "info.json").read_text())["features"]
    rows = list(ds)
    assert sorted(r["__key__"] for r in rows) == sorted(_samples(glob.glob(str(card / "shards" / "*.tar"))))
    for row in rows:
        assert row["camera.npy"].shape == tuple(features["camera.npy"]["shape"])
        assert row["meta.json"]["schema_version"] == json.loads((card / "info.json").read_text())["schema_version"]
        assert row["mp4"]["bytes"][4:8] == b"ftyp"
        assert (row["degraded.mp4"] is None) == (row["meta.json"]["augment"]["kind"] == "none")


def test_webdataset_reads_the_cards_data_files(card: Path) -> None:
    import webdataset as wds

    front, _ = _front_matter(card / "README.md")
    pattern = front["configs"][0]["data_files"][0]["path"]
    urls = sorted(glob.glob(str(card / pattern)))
    samples = [decode_sample(raw) for raw in wds.WebDataset(urls, shardshuffle=False)]
    assert len(samples) == CLIPS and all(s.camera is not None for s in samples)
