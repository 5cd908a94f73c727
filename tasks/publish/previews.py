"""Contact sheets for the run report: a few published samples per interruption kind."""
from __future__ import annotations

import textwrap
from collections import defaultdict
from pathlib import Path

from schemas.manifest import ManifestRow
from schemas.sample_io import decode_sample
from schemas.shards import read_sample
from tasks.publish.preview import render_preview
from engine.run import RunContext
from tasks.publish.pack import shard_file


def preview_sample(shard: Path, key: str, out_png: Path) -> Path:
    sample = decode_sample(read_sample(shard, key))
    degraded = sample.degraded_frames() if sample.degraded_mp4 is not None else None
    title = f"{key} · {sample.graph.interruption.kind.value} · {', '.join(sample.meta.tags) or 'untagged'}"
    if sample.degraded_caption:  # degraded.txt: what the interruption does
        title += "\n" + textwrap.fill(sample.degraded_caption, 160)
    return render_preview(sample.clean_frames(), degraded, sample.graph, title, out_png)


def render_previews(run: RunContext, rows: list[ManifestRow], per_kind: int = 1) -> list[str]:
    """Up to ``per_kind`` previews per interruption kind; paths relative to OUT (for report.md)."""
    picked: dict[str, list[ManifestRow]] = defaultdict(list)
    for row in rows:
        if row.status == "accepted" and row.shard and len(picked[row.interruption or "none"]) < per_kind:
            picked[row.interruption or "none"].append(row)
    paths = []
    for kind in sorted(picked):
        for row in picked[kind]:
            out_png = run.previews / f"{row.key}.png"
            if not out_png.exists():
                preview_sample(shard_file(run, row.shard), row.key, out_png)  # type: ignore[arg-type]
            paths.append(str(out_png.relative_to(run.out)))
    return paths
