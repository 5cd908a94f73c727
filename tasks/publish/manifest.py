"""Writing OUT/manifest.parquet: every row from the clip ledgers, with the shard each accepted key landed in."""
from __future__ import annotations

import io

import pyarrow.parquet as pq

from schemas.arrow import rows_to_table
from schemas.manifest import ManifestRow
from engine.run import RunContext, atomic_write_bytes


def write_manifest(run: RunContext, rows: list[ManifestRow], key_to_shard: dict[str, str]) -> list[ManifestRow]:
    final = [row.model_copy(update={"shard": key_to_shard.get(row.key)}) if row.key else row for row in rows]
    missing = [r.key for r in final if r.status == "accepted" and r.shard is None]
    if missing:
        raise RuntimeError(f"accepted samples missing from every shard: {missing[:5]}")
    buffer = io.BytesIO()
    pq.write_table(rows_to_table(ManifestRow, final), buffer)
    atomic_write_bytes(run.out / "manifest.parquet", buffer.getvalue(), run.tmp)
    return final


def read_manifest(path) -> list[ManifestRow]:
    table = pq.read_table(path)
    rows = []
    for record in table.to_pylist():
        record["scores"] = dict(record["scores"] or [])
        rows.append(ManifestRow.model_validate(record))
    return rows
