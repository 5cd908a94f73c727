"""The bucket's compacted ledger and shard index (engine/s3_catalog.py), against moto's S3 server on 127.0.0.1:
a resume reads one ledger part instead of one object per clip, the later of part and object wins, a crash between a
part's upload and the removal of what it folded leaves a ledger that agrees, and a local entry the bucket lacks is
dropped (its clip is redone)."""
from __future__ import annotations

import gzip
import json

import pytest

from tests.engine.test_s3_out import _objects, moto_endpoint, s3  # noqa: F401 - the moto fixtures

pytestmark = pytest.mark.timeout(120)
CLIPS = 30


def _entry(run, index: int, caption: str = "a pan") -> dict:
    from schemas.manifest import ManifestRow

    row = ManifestRow(run_id=run.run_id, clip_id=f"clip-{index:03d}", source="synthetic", uri=f"synthetic:{index}",
                      config_hash=run.clip_hash, window=0, status="rejected", reason="static_scene", caption=caption)
    return {"clip_id": row.clip_id, "clip_hash": run.clip_hash, "rows": [row.model_dump(mode="json")],
            "member_checksums": {}}


def _items():
    from tasks.records import SourceItem

    return [SourceItem(f"clip-{i:03d}", "synthetic", f"synthetic:{i}") for i in range(CLIPS)]


def _commit_all(url: str) -> dict[str, bytes]:
    """A run whose workers committed CLIPS ledger entries, then refreshed before packing (which folds them)."""
    from engine.run import atomic_write_json
    from engine.run_setup import open_output
    from schemas.config import Config

    with open_output(url, Config()) as run:
        for i in range(CLIPS):
            atomic_write_json(run.clips / f"clip-{i:03d}.json", _entry(run, i))
        run.store.put(sorted(run.clips.glob("*.json")))
        run.store.refresh()
        return {p.stem: p.read_bytes() for p in run.clips.glob("*.json")}


def _resume(url: str):
    from engine.ledger import split_finished
    from engine.run_setup import open_output
    from schemas.config import Config

    with open_output(url, Config()) as run:
        split = split_finished(_items(), run)
        return split, {p.stem: p.read_bytes() for p in run.clips.glob("*.json")}, run


def _part(client, bucket: str, key: str) -> dict[str, str]:
    return json.loads(gzip.decompress(client.get_object(Bucket=bucket, Key=key)["Body"].read()))


def test_a_resume_elsewhere_reads_one_part_not_an_object_per_clip(s3, tmp_path, monkeypatch):
    bucket, client, _ = s3
    url = f"s3://{bucket}/run"
    written = _commit_all(url)
    objects = _objects(client, bucket, "run/")
    assert not [k for k in objects if k.startswith("cache/clips/")]
    assert [k for k in objects if k.startswith("cache/ledger/")] == ["cache/ledger/part-000001.json.gz"]
    folded = _part(client, bucket, "run/cache/ledger/part-000001.json.gz")
    assert {k: v.encode() for k, v in folded.items()} == written  # the entries' exact bytes

    monkeypatch.setenv("REMIND_CURATE_WORKDIR", str(tmp_path / "another-machine"))
    split, local, _ = _resume(url)
    assert (len(split.done_rows), split.todo, split.redo_reasons) == (CLIPS, [], {})
    assert local == written


def test_the_later_of_part_and_object_wins_and_a_half_done_fold_agrees(s3, tmp_path, monkeypatch):
    from engine.run_setup import open_output
    from schemas.config import Config

    bucket, client, _ = s3
    url = f"s3://{bucket}/run"
    _commit_all(url)
    with open_output(url, Config()) as run:  # a later run redoes clip 7: its new entry is an object again
        newer = json.dumps(_entry(run, 7, caption="a slow pan")).encode()
        client.put_object(Bucket=bucket, Key="run/cache/clips/clip-007.json", Body=newer)
    monkeypatch.setenv("REMIND_CURATE_WORKDIR", str(tmp_path / "b"))
    _, local, _ = _resume(url)
    assert local["clip-007"] == newer

    # A fold whose removals never happened (the driver died after uploading part 2): both are visible, and agree.
    part1 = client.get_object(Bucket=bucket, Key="run/cache/ledger/part-000001.json.gz")["Body"].read()
    with open_output(url, Config()) as run:
        run.store.refresh()
    assert sorted(k for k in _objects(client, bucket, "run/") if k.startswith("cache/")) == \
        ["cache/ledger/part-000002.json.gz"]
    client.put_object(Bucket=bucket, Key="run/cache/ledger/part-000001.json.gz", Body=part1)
    client.put_object(Bucket=bucket, Key="run/cache/clips/clip-007.json", Body=newer)
    monkeypatch.setenv("REMIND_CURATE_WORKDIR", str(tmp_path / "c"))
    split, local, _ = _resume(url)
    assert local["clip-007"] == newer and len(split.done_rows) == CLIPS


def test_a_local_entry_the_bucket_lacks_is_dropped_and_redone(s3):
    from engine.run import atomic_write_json

    bucket, _, _ = s3
    url = f"s3://{bucket}/run"
    _commit_all(url)
    _, _, run = _resume(url)
    atomic_write_json(run.clips / "clip-999.json", {"clip_id": "clip-999"})  # written here, never uploaded
    (run.clips / "clip-003.json").write_text("torn")  # a working copy that no longer matches the bucket
    split, local, _ = _resume(url)
    assert "clip-999" not in local and local["clip-003"].startswith(b"{")
    assert len(split.done_rows) == CLIPS


def test_a_running_pipeline_folds_the_ledger_every_interval(s3, monkeypatch):
    """The executor calls the store's checkpoint after each result: with the interval at 0 the clip objects
    committed so far are folded while the run goes (a run killed later resumes from the part); at the default
    interval nothing is folded yet."""
    from engine.executor import run_pipeline
    from engine.run import atomic_write_json
    from engine.run_setup import open_output
    from engine.stage import Pipeline, ProcessingStage
    from schemas.config import Config

    class Pass(ProcessingStage[int, int]):
        name, input_type, output_type = "pass", int, int

        def process(self, record: int) -> int:
            return record

    bucket, client, _ = s3
    pipeline = Pipeline("pass", (Pass,), on_failure=lambda failed, config, run: failed)

    def committed_then_run(interval: str, prefix: str) -> list[str]:
        monkeypatch.setenv("REMIND_CURATE_LEDGER_FOLD_S", interval)
        with open_output(f"s3://{bucket}/{prefix}", Config()) as run:
            for i in range(3):
                atomic_write_json(run.clips / f"clip-{i:03d}.json", _entry(run, i))
            run.store.put(sorted(run.clips.glob("*.json")))
            assert list(run_pipeline(range(2), pipeline, Config(), run)) == [0, 1]
        return sorted(k for k in _objects(client, bucket, f"{prefix}/") if k.startswith("cache/"))

    assert committed_then_run("120", "later") == [f"cache/clips/clip-00{i}.json" for i in range(3)]
    assert committed_then_run("0", "now") == ["cache/ledger/part-000001.json.gz"]
    assert set(_part(client, bucket, "now/cache/ledger/part-000001.json.gz")) == {f"clip-00{i}" for i in range(3)}


def test_a_malformed_fold_interval_is_a_misconfiguration(s3, monkeypatch):
    from engine.store import StorageError
    from engine.stores import open_store

    monkeypatch.setenv("REMIND_CURATE_LEDGER_FOLD_S", "soon")
    with pytest.raises(StorageError, match="REMIND_CURATE_LEDGER_FOLD_S must be a number of seconds >= 0"):
        open_store(f"s3://{s3[0]}/run")
