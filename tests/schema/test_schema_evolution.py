"""Schema evolution: shards frozen from 1.0.0 still validate, decode and load in training; readers keep what a newer
minor adds; another major is refused with the command to run; `remind-curate migrate` rewrites old shards."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError

from remind_curate.cli import main
from schemas import jsonschema
from schemas.migrate import migrate_members, plan
from schemas.sample import ENTRIES, SampleMeta, SourceInfo
from schemas.sample_io import decode_sample, npy_bytes, with_checksums
from schemas.version import SCHEMA_VERSION, SchemaVersionError
from tasks.shards.validate import iter_samples, validate_path
from tests.schema.conftest import members_of, write_tar

KINDS = {"synthetic-0-00000-w00": "none", "synthetic-0-00001-w00": "occluder", "synthetic-0-00002-w00": "camera_loop"}


def test_frozen_1_0_0_shard_still_validates_with_video(frozen_shard: Path) -> None:
    report = validate_path(frozen_shard)
    assert report.ok and report.samples == 3, [str(p) for p in report.problems]
    for raw in iter_samples(frozen_shard):
        sample = decode_sample(raw)
        assert sample.meta.schema_version == sample.graph.schema_version == "1.0.0"
        assert sample.meta.augment.kind.value == KINDS[sample.key] == sample.graph.interruption.kind.value
        assert sample.meta.truth is not None and sample.meta.truth.family  # typed, with its scene facts kept
        assert sample.meta.truth.model_extra and "wall_depth" in sample.meta.truth.model_extra
        assert sample.depth is not None and sample.depth.shape == ENTRIES["depth.npy"].shape


def test_frozen_shard_loads_in_training(frozen_shard: Path) -> None:
    """Through training's own reader: webdataset rows -> decode_row -> row_to_sample with a tiny VAE."""
    import torch
    import webdataset as wds

    from training.config import VAEConfig
    from training.data import decode_row, row_to_sample
    from training.vae import LatentEncoder

    torch.set_num_threads(1)  # 2 shared cores: OpenMP spinning is many times slower
    encoder = LatentEncoder(VAEConfig(base_dim=4))
    rows = [decode_row(raw, 16, 16) for raw in wds.WebDataset(str(frozen_shard), shardshuffle=False)]
    assert [r["interruption"] for r in rows] == list(KINDS.values())
    samples = [row_to_sample(row, encoder) for row in rows]
    assert [s.has_degraded for s in samples] == [False, True, True]
    assert all(s.latents["clean"].shape[1] == 21 and s.cameras["clean"].shape == (21, 14) for s in samples)


def test_migrate_frozen_shard_to_current(frozen_shard: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["migrate", str(frozen_shard.parent.parent), str(tmp_path / "new")]) == 0
    out = capsys.readouterr().out
    assert f"3 samples in 1 shards readable by schema {SCHEMA_VERSION} (were 1.0.0: 3)" in out and "OK" in out
    old = {str(r["__key__"]): members_of(r) for r in iter_samples(frozen_shard)}
    new = {str(r["__key__"]): members_of(r) for r in iter_samples(tmp_path / "new" / "shards" / frozen_shard.name)}
    assert list(new) == list(old)
    for key, members in new.items():
        assert set(members) == set(old[key]) | {"checksums.json"} and next(iter(members)) == "checksums.json"
        for ext in old[key]:  # an older minor needs no change (schemas/version.py): everything byte for byte
            assert members[ext] == old[key][ext], ext
        again, source, steps = migrate_members(members, key)
        assert again == members and source == "1.0.0" and [s.target for s in steps] == ["1.1.0"]  # idempotent


def _sample_members(frozen_shard: Path) -> dict[str, bytes]:
    raw = next(iter_samples(frozen_shard))
    return {k: v for k, v in members_of(raw).items() if k not in ("depth.npy",)}


def _with_meta(members: dict[str, bytes], **changes: object) -> dict[str, bytes]:
    meta = json.loads(members["meta.json"])
    meta["geometry"]["has_depth"] = False
    meta.update(changes)
    return {**members, "meta.json": json.dumps(meta).encode()}


def test_newer_minor_is_read_and_its_additions_kept(frozen_shard: Path, tmp_path: Path) -> None:
    members = _with_meta(_sample_members(frozen_shard), schema_version="1.9.0", future_field={"a": 1},
                         source={"kind": "synthetic", "uri": "u", "provenance": {}, "mirror": "m"})
    members["mask.npy"] = npy_bytes(np.zeros((81, 8), np.uint8))
    members = with_checksums(members)  # required from 1.1.0: a 1.9.0 sample has them too
    shard = write_tar(tmp_path / "minor.tar", [("synthetic-0-00000-w00", members)])
    report = validate_path(shard, decode_video=False)
    assert report.ok, [str(p) for p in report.problems]
    sample = decode_sample({"__key__": "synthetic-0-00000-w00", **members})
    assert sample.unknown_fields == {"meta.json": {"future_field": {"a": 1}, "source.mirror": "m"}}
    assert set(sample.extra) == {"mask.npy"}


@pytest.mark.parametrize("version,expected", [
    ("2.0.0", "schema_version 2.0.0 is a newer major version than this reader's"),
    ("0.9.0", "older than the first released format 1.0.0: no remind-curate wrote it, and nothing can migrate it"),
    ("1.x", "schema_version '1.x' is not MAJOR.MINOR.PATCH"),
])
def test_other_majors_are_refused_with_what_to_do(frozen_shard: Path, tmp_path: Path, version: str,
                                                  expected: str) -> None:
    members = _with_meta(_sample_members(frozen_shard), schema_version=version)
    report = validate_path(write_tar(tmp_path / "major.tar", [("synthetic-0-00000-w00", members)]), False)
    assert [p.problem.split(": ", 1)[0] for p in report.problems] == ["meta.json"]
    assert expected in report.problems[0].problem


def test_a_major_without_a_registered_migration_cannot_be_migrated() -> None:
    with pytest.raises(SchemaVersionError, match=r"no migration from schema 0.x is registered"):
        plan("0.9.0")
    with pytest.raises(SchemaVersionError, match="newer than this program"):
        plan("2.0.0")
    assert [step.target for step in plan("1.0.0")] == ["1.1.0"]  # adds checksums.json, nothing restamped
    assert plan("1.1.0") == plan("1.99.0") == []  # the same major: read as it is


def test_writers_stay_strict() -> None:
    with pytest.raises(ValidationError, match="future_field"):
        SampleMeta(key="k", clip_id="k", window=0, source=SourceInfo(kind="local", uri="u"), source_span_s=(0, 1),
                   config_hash="h", run_id="r", future_field=1)
    with pytest.raises(ValidationError, match="verdict"):  # meta.vlm is typed: a judgement, not a free dict
        SampleMeta(key="k", clip_id="k", window=0, source=SourceInfo(kind="local", uri="u"), source_span_s=(0, 1),
                   config_hash="h", run_id="r", vlm={"backend": "b", "model": "m", "prompt_version": "p",
                                                     "decision": "accepted"})


def test_published_sample_schema_has_npy_shapes_and_dtypes() -> None:
    document = json.loads((jsonschema.JSON_DIR / "sample.schema.json").read_text())
    assert document == json.loads(jsonschema.generate()["sample.schema.json"])
    for ext, spec in ENTRIES.items():
        entry = document["properties"][ext]
        assert entry["maxBytes"] == spec.max_bytes
        if spec.dtype:
            assert (entry["npyDtype"], tuple(entry["npyShape"])) == (spec.dtype, spec.shape)
    assert document["properties"]["depth.npy"]["npyShape"] == [81, 120, 208]
    assert set(document["required"]) == {"mp4", "graph.json", "meta.json"}
