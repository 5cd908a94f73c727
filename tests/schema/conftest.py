"""Shards for the schema tests: the frozen 1.0.0 shard, unpacked, and a small valid shard of the current version."""
from __future__ import annotations

import gzip
import hashlib
import json
import tarfile
from io import BytesIO
from pathlib import Path

import pytest

from schemas.migrate import migrate_members
from tasks.shards.validate import iter_samples

FROZEN = Path(__file__).resolve().parents[1] / "data" / "frozen" / "v1.0.0"


def write_tar(path: Path, samples: list[tuple[str, dict[str, bytes]]]) -> Path:
    with tarfile.open(path, "w", format=tarfile.USTAR_FORMAT) as tar:
        for key, members in samples:
            for ext, data in members.items():
                info = tarfile.TarInfo(f"{key}.{ext}")
                info.size, info.mode = len(data), 0o444
                tar.addfile(info, BytesIO(data))
    return path


def members_of(raw: dict) -> dict[str, bytes]:
    return {k: v for k, v in raw.items() if not k.startswith("__")}


@pytest.fixture(scope="session")
def frozen_shard(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The 1.0.0 shard exactly as frozen (its SHA-256 is checked: nobody regenerated it)."""
    data = gzip.decompress((FROZEN / "shard-000000.tar.gz").read_bytes())
    assert hashlib.sha256(data).hexdigest() == (FROZEN / "shard-000000.tar.sha256").read_text().strip()
    path = tmp_path_factory.mktemp("frozen") / "shards" / "shard-000000.tar"
    path.parent.mkdir()
    path.write_bytes(data)
    return path


@pytest.fixture(scope="session")
def small_shard(frozen_shard: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The frozen samples without depth (1.2 MB instead of 13), through `migrate`: checksums.json first, as the
    packer writes it."""
    samples = []
    for raw in iter_samples(frozen_shard):
        members = {k: v for k, v in members_of(raw).items() if k not in ("depth.npy", "depth_conf.npy")}
        meta = json.loads(members["meta.json"])
        meta["geometry"]["has_depth"] = False
        members["meta.json"] = json.dumps(meta).encode()
        samples.append((str(raw["__key__"]), migrate_members(members, str(raw["__key__"]), decode_video=False)[0]))
    return write_tar(tmp_path_factory.mktemp("small") / "small.tar", samples)
