"""`migrate` verifies before it writes: a sample failing its checksums or any check is reported, never rewritten, and
the command exits non-zero. Each migration step has its test; a refused version names a command that exists."""
from __future__ import annotations

import hashlib
import io
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml

from remind_curate.cli import build_parser, main
from schemas.constants import NUM_FRAMES
from schemas.migrate import STEPS, MigrationRefused, add_checksums, migrate_members, plan
from schemas.sample_io import npy_bytes
from schemas.version import (CURRENT, FIRST_RELEASED, SCHEMA_VERSION, SchemaVersionError, check_readable,
                             parse_version)
from tasks.shards.validate import iter_samples, validate_path
from tests.schema.conftest import FROZEN, members_of, write_tar

pytestmark = pytest.mark.timeout(120)


def _samples(shard: Path) -> list[tuple[str, dict[str, bytes]]]:
    return [(str(raw["__key__"]), members_of(raw)) for raw in iter_samples(shard)]


def _migrated_keys(out: Path) -> list[str]:
    shards = sorted((out / "shards").glob("*.tar"))
    return [key for shard in shards for key, _ in _samples(shard)]


def test_a_tampered_sample_is_never_rewritten(small_shard: Path, tmp_path: Path,
                                              capsys: pytest.CaptureFixture) -> None:
    (good_key, good), (bad_key, bad), _ = _samples(small_shard)
    meta = json.loads(bad["meta.json"])
    meta["caption"] = "an edited caption"  # valid JSON and a valid model: only checksums.json can tell
    tampered = {**bad, "meta.json": json.dumps(meta).encode()}
    (tmp_path / "old").mkdir()
    old = write_tar(tmp_path / "old" / "shard-000000.tar", [(good_key, good), (bad_key, tampered)])
    assert main(["migrate", str(old), str(tmp_path / "new")]) == 1
    captured = capsys.readouterr()
    assert (f"shard-000000.tar: {bad_key}: not migrated: meta.json: content differs from its checksums.json digest "
            "(changed after packing)") in captured.err.splitlines()
    assert _migrated_keys(tmp_path / "new") == [good_key]  # the good one is rewritten, the tampered one is not
    assert validate_path(tmp_path / "new" / "shards").ok


def test_a_repeated_key_is_migrated_once(small_shard: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    (a_key, a), (b_key, b), _ = _samples(small_shard)
    (tmp_path / "old").mkdir()
    old = write_tar(tmp_path / "old" / "shard-000000.tar", [(a_key, a), (b_key, b), (a_key, a)])
    assert main(["migrate", str(old), str(tmp_path / "new")]) == 1
    assert (f"shard-000000.tar: {a_key}: not migrated: duplicate key (also in shard-000000.tar)"
            in capsys.readouterr().err.splitlines())
    assert _migrated_keys(tmp_path / "new") == [a_key, b_key]
    assert validate_path(tmp_path / "new" / "shards").ok


def test_a_1_0_sample_failing_a_1_0_check_gets_no_checksums(frozen_shard: Path, tmp_path: Path,
                                                           capsys: pytest.CaptureFixture) -> None:
    samples = _samples(frozen_shard)
    key, members = samples[0]
    camera = np.load(io.BytesIO(members["camera.npy"])).copy()
    camera[0, 0, 3] = 0.5  # frame 0 not the identity: a 1.0 rule
    broken = {**members, "camera.npy": npy_bytes(camera)}
    (tmp_path / "old").mkdir()
    old = write_tar(tmp_path / "old" / "shard-000000.tar", [(key, broken), *samples[1:]])
    assert main(["migrate", str(old), str(tmp_path / "new")]) == 1
    assert f"shard-000000.tar: {key}: not migrated: camera.npy frame 0 is not the identity" in \
        capsys.readouterr().err.splitlines()
    assert _migrated_keys(tmp_path / "new") == [k for k, _ in samples[1:]]
    with pytest.raises(MigrationRefused, match="camera.npy frame 0 is not the identity"):
        migrate_members(broken, key, decode_video=False)  # the in-memory path verifies too


def test_step_1_0_to_1_1_adds_checksums_of_the_verified_bytes(frozen_shard: Path) -> None:
    key, members = _samples(frozen_shard)[1]
    assert [(s.source, s.target, s.restamp) for s in STEPS] == [((1, 0), "1.1.0", False)]
    out, source, steps = migrate_members(members, key, decode_video=False)
    assert source == "1.0.0" and steps == [STEPS[0]] and list(out)[0] == "checksums.json"
    listed = json.loads(out["checksums.json"])["sha256"]
    assert listed == {ext: hashlib.sha256(data).hexdigest() for ext, data in members.items()}
    assert {ext: data for ext, data in out.items() if ext != "checksums.json"} == members  # nothing else changed
    digests = {ext: hashlib.sha256(data).hexdigest() for ext, data in out.items()}
    assert add_checksums({}, digests) == {}  # a sample that has them keeps its own


def test_a_refused_version_names_a_command_that_exists() -> None:
    commands = {name for action in build_parser()._subparsers._group_actions  # type: ignore[union-attr]
                for name in action.choices}
    for version in ("0.9.0", "2.0.0", "3.1.0"):
        with pytest.raises(SchemaVersionError) as refused:
            check_readable(version)
        named = re.findall(r"`remind-curate (\w+)", str(refused.value))
        assert set(named) <= commands, (version, named)
        assert named or "pip install --upgrade remind-curate" in str(refused.value) \
            or "nothing can migrate it" in str(refused.value), str(refused.value)
    for major in range(parse_version(FIRST_RELEASED)[0], CURRENT[0]):  # every older released major migrates
        plan(f"{major}.0.0")


def _card(new: Path) -> tuple[dict, str]:
    info = json.loads((new / "info.json").read_text())
    front, body = (new / "README.md").read_text()[4:].split("\n---\n", 1)
    assert yaml.safe_load(front)["configs"][0]["data_files"] == [{"split": "train", "path": "shards/*.tar"}]
    return info, body


def test_migrating_an_ingest_output_writes_the_card_of_what_new_holds(frozen_shard: Path, tmp_path: Path) -> None:
    """NEW's card: its shards (a sample left out is not counted), the run's recorded config hash, the versions its
    samples carry (nothing is restamped) and the frames they hold."""
    samples = _samples(frozen_shard)
    key, members = samples[0]
    camera = np.load(io.BytesIO(members["camera.npy"])).copy()
    camera[0, 0, 3] = 0.5  # fails a 1.0 check: left out
    old = tmp_path / "old"
    (old / "shards").mkdir(parents=True)
    write_tar(old / "shards" / "shard-000000.tar", [(key, {**members, "camera.npy": npy_bytes(camera)}),
                                                    *samples[1:]])
    for name in ("manifest.parquet", "run.json"):
        shutil.copy2(FROZEN / name, old / name)
    shutil.copy2(FROZEN / "ingest-config.yaml", old / "config.yaml")
    assert main(["migrate", str(old), str(tmp_path / "new")]) == 1
    info, body = _card(tmp_path / "new")
    new_shard = tmp_path / "new" / "shards" / "shard-000000.tar"
    assert info["total_samples"] == 2 and info["total_frames"] == 2 * NUM_FRAMES
    assert info["shards"] == ["shard-000000.tar"] and info["total_bytes"] == new_shard.stat().st_size
    assert info["config_hash"] == json.loads((FROZEN / "run.json").read_text())["config_hash"]
    assert info["schema_version"] == SCHEMA_VERSION and info["sample_schema_versions"] == {"1.0.0": 2}
    assert info["counts_from"] == "manifest.parquet"
    table = body.split("### By interruption\n\n", 1)[1].split("\n\n", 1)[0].splitlines()[2:]
    assert sorted(line.split(" | ")[0].strip("| ") for line in table) == ["camera_loop", "occluder"]


def test_migrating_bare_shards_derives_the_card_from_the_samples(frozen_shard: Path, tmp_path: Path) -> None:
    """Without a manifest (a shard folder), the card is made from the migrated samples' own meta.json."""
    assert main(["migrate", str(frozen_shard.parent), str(tmp_path / "new")]) == 0
    info, body = _card(tmp_path / "new")
    assert info["total_samples"] == 3 and info["total_frames"] == 3 * NUM_FRAMES
    assert info["counts_from"] == "meta.json" and info["config_hash"] is None
    assert info["sample_schema_versions"] == {"1.0.0": 3}
    table = body.split("### By interruption\n\n", 1)[1].split("\n\n", 1)[0].splitlines()[2:]
    assert sorted(line.split(" | ")[0].strip("| ") for line in table) == ["camera_loop", "none", "occluder"]
