"""The dataset card of an OUT: ``README.md`` in the Hugging Face dataset-card form and ``info.json`` after LeRobot's
``meta/info.json``. Both are derived from the manifest rows and from ``schemas/`` (the sample's entries, the fixed
geometry, the version): nothing here restates the format by hand.

The card declares every entry's feature type (``dataset_info.features``) because a sample's optional entries
(``degraded.mp4``, ``txt``, depth, ...) differ between samples, and the ``datasets`` library's WebDataset builder
otherwise infers the columns from the first five samples and refuses the rest.

An ingest's card comes from its manifest and config. A migrated OUT's (``remind-curate migrate``) says what the
migration leaves: the run's recorded config hash (``config`` as a string; None when unknown), the schema versions
its samples carry (``versions``: a migration restamps nothing) and, when OLD had no manifest, counts made from the
samples' own ``meta.json`` (``from_manifest=False``).
"""
from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from engine.run import atomic_write_bytes
from schemas.config import Config
from schemas.constants import CHUNK_SIZE, FPS, HEIGHT, LATENT_FRAMES, NUM_FRAMES, WIDTH
from schemas.jsonschema import sample_schema
from schemas.manifest import ManifestRow
from schemas.sample import KEY_PATTERN
from schemas.version import SCHEMA_VERSION

DATA_FILES = "shards/*.tar"

# Hugging Face Hub license ids (https://huggingface.co/docs/hub/repositories-licenses) a source may name; any
# other license (the Pexels License, "generated", "unknown (local file)") is `other` and listed in the card's body.
HF_LICENSES = frozenset({
    "apache-2.0", "mit", "bsd-2-clause", "bsd-3-clause", "cc0-1.0", "cc-by-2.0", "cc-by-2.5", "cc-by-3.0",
    "cc-by-4.0", "cc-by-sa-3.0", "cc-by-sa-4.0", "cc-by-nc-2.0", "cc-by-nc-3.0", "cc-by-nc-4.0", "cc-by-nd-4.0",
    "cc-by-nc-nd-3.0", "cc-by-nc-nd-4.0", "cc-by-nc-sa-2.0", "cc-by-nc-sa-3.0", "cc-by-nc-sa-4.0",
    "cdla-permissive-2.0", "cdla-sharing-1.0", "odc-by", "odbl", "pddl", "gpl-3.0", "lgpl-3.0", "agpl-3.0",
    "unlicense", "openrail",
})

# The Hub's size_categories buckets: (exclusive upper bound, label).
SIZE_BUCKETS = ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M"),
                (10_000_000, "1M<n<10M"), (100_000_000, "10M<n<100M"), (1_000_000_000, "100M<n<1B"))


def hf_license(name: str | None) -> str:
    """A source's license name as a Hub license id ("CC BY-NC 4.0" -> "cc-by-nc-4.0"), else ``other``."""
    slug = re.sub(r"[\s_]+", "-", (name or "").strip().lower())
    return slug if slug in HF_LICENSES else "other"


def size_category(count: int) -> str:
    for bound, label in SIZE_BUCKETS:
        if count < bound:
            return label
    return "n>1B"


def published_rows(rows: list[ManifestRow]) -> list[ManifestRow]:
    """The samples a reader of the shards gets: accepted rows packed into a shard."""
    return [row for row in rows if row.status == "accepted" and row.shard]


def sample_features() -> dict[str, dict[str, Any]]:
    """Every entry of a sample with its dtype and shape, from ``schemas.jsonschema.sample_schema`` (itself made
    from ``schemas.sample.ENTRIES``). ENTRIES declares dtype and shape for the arrays only; for the other entries
    ``derived_from`` names where the value comes from."""
    schema = sample_schema()
    features: dict[str, dict[str, Any]] = {}
    for entry, spec in schema["properties"].items():
        media = spec["contentMediaType"]
        feature: dict[str, Any] = {"required": entry in schema["required"], "max_bytes": spec["maxBytes"],
                                   "description": spec["description"]}
        if "npyDtype" in spec:
            feature.update(dtype=spec["npyDtype"], shape=spec["npyShape"], derived_from="schemas.sample.ENTRIES")
        elif media == "video/mp4":
            feature.update(dtype="video", shape=[NUM_FRAMES, HEIGHT, WIDTH, 3],
                           names=["frame", "height", "width", "channel"],
                           info={"video.fps": FPS, "video.codec": "h264", "decoded_dtype": "uint8",
                                 "decoded_pixel_format": "rgb24"},
                           derived_from="schemas.constants (NUM_FRAMES, HEIGHT, WIDTH, FPS); schemas.mp4.decode_mp4 "
                                        "(N,H,W,3) uint8 RGB; schemas.validation (codec h264)")
        elif media == "application/json":
            feature.update(dtype="json", shape=None, derived_from="schemas.jsonschema.sample_schema")
            if "contentSchema" in spec:
                feature["schema"] = "schemas/json/" + spec["contentSchema"]["$ref"]
        elif media.startswith("text/plain"):
            feature.update(dtype="string", shape=None, derived_from="schemas.jsonschema.sample_schema")
        else:
            raise ValueError(f"entry {entry}: no card feature for media type {media}")
        features[entry] = feature
    return features


def hf_features() -> list[dict[str, Any]]:
    """``dataset_info.features`` as the Hub's YAML writes ``datasets.Features``: a column per entry (the WebDataset
    builder names a member's column by its extension), then ``__key__`` and ``__url__``."""
    columns = []
    for entry, feature in sample_features().items():
        dtype: Any = {"video": "video", "json": "json", "string": "string"}.get(feature["dtype"])
        if dtype is None:
            shape = feature["shape"]
            dtype = {f"array{len(shape)}_d": {"shape": shape, "dtype": feature["dtype"]}}
        columns.append({"name": entry, "dtype": dtype})
    return columns + [{"name": "__key__", "dtype": "string"}, {"name": "__url__", "dtype": "string"}]


ConfigOrHash = Config | str | None  # the run's config, or the config hash it recorded, or None: unknown


def _config_hash(config: ConfigOrHash) -> str | None:
    return config.config_hash if isinstance(config, Config) else config


def _versions(samples: list[ManifestRow], versions: Mapping[str, int] | None) -> dict[str, int]:
    """schema_version -> number of samples stamped with it (all this writer's version unless told otherwise)."""
    return dict(sorted(versions.items())) if versions is not None else {SCHEMA_VERSION: len(samples)}


def build_info(rows: list[ManifestRow], config: ConfigOrHash, shards: dict[str, int],
               versions: Mapping[str, int] | None = None, from_manifest: bool = True) -> dict[str, Any]:
    samples = published_rows(rows)
    return {
        "codebase": "remind-curate",
        "schema_version": SCHEMA_VERSION,  # every sample is readable as this version
        "sample_schema_versions": _versions(samples, versions),
        "config_hash": _config_hash(config),
        "counts_from": "manifest.parquet" if from_manifest else "meta.json",
        "fps": FPS,
        "frames_per_sample": NUM_FRAMES,
        "resolution": {"height": HEIGHT, "width": WIDTH},
        "latent_frames": LATENT_FRAMES,
        "chunk_size": CHUNK_SIZE,
        "total_samples": len(samples),
        "total_frames": len(samples) * NUM_FRAMES,
        "total_shards": len(shards),
        "total_bytes": sum(shards.values()),
        "shards": sorted(shards),
        "splits": {"train": DATA_FILES},
        "key_pattern": KEY_PATTERN,
        "features": sample_features(),
    }


def _front_matter(samples: list[ManifestRow]) -> dict[str, Any]:
    licenses = sorted({hf_license(row.license) for row in samples}) or ["other"]
    tasks = (["text-to-video"] if any(row.caption for row in samples) else []) + ["image-to-video"]
    tags = ["video", "webdataset", "world-model", "camera-poses", "remind"]
    if any(row.source == "synthetic" for row in samples):
        tags.append("synthetic")
    return {
        "license": licenses,
        "size_categories": [size_category(len(samples))],
        "task_categories": tasks,
        "tags": tags,
        "configs": [{"config_name": "default", "data_files": [{"split": "train", "path": DATA_FILES}]}],
        "dataset_info": {"config_name": "default", "features": hf_features()},
    }


def _counts(title: str, counts: Counter) -> list[str]:
    lines = [f"### By {title}", "", f"| {title} | samples |", "|---|---|"]
    lines += [f"| {name} | {count} |" for name, count in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))]
    return lines + [""]


LOADING = """## Loading

With the `datasets` library, through this card (its `configs` and `dataset_info.features`); pass the folder or, once
uploaded, the Hub repository:

```python
import datasets

ds = datasets.load_dataset("path/to/this/folder", split="train", streaming=True)
ds = ds.cast_column("mp4", datasets.Video(decode=False))  # MP4 bytes; decoding them needs torchcodec
sample = next(iter(ds))  # {"mp4": {...}, "meta.json": {...}, "camera.npy": array(81, 4, 4), ..., "__key__": ...}
```

`datasets.load_dataset("webdataset", data_files="shards/*.tar")` without this card infers the columns from the first
samples and stops at the first sample with other optional entries.

With `webdataset` and this project's typed reader:

```python
import glob
import webdataset as wds
from schemas.sample_io import decode_sample

for raw in wds.WebDataset(sorted(glob.glob("shards/*.tar")), shardshuffle=False):
    sample = decode_sample(raw)  # checks the schema version and each entry's dtype and shape
```

`remind-curate validate .` checks every sample; `info.json` lists every entry with its dtype and shape.
"""


def render_card(rows: list[ManifestRow], config: ConfigOrHash, shards: dict[str, int],
                versions: Mapping[str, int] | None = None, from_manifest: bool = True) -> str:
    samples = published_rows(rows)
    status = Counter(row.status for row in rows)
    front = yaml.safe_dump(_front_matter(samples), sort_keys=False, default_flow_style=False, width=1000)
    plural = "s" * (len(shards) != 1)
    stamped = _versions(samples, versions)
    schema = f"schema {SCHEMA_VERSION}"
    if set(stamped) - {SCHEMA_VERSION}:
        schema += (" (migrated by `remind-curate migrate`, which restamps nothing: samples stamped "
                   + ", ".join(f"{version}: {count}" for version, count in stamped.items()) + ")")
    config_hash = _config_hash(config)
    lines = ["---", front.rstrip("\n"), "---", "", "# ReMind training samples", "",
             f"{len(samples)} samples in {len(shards)} WebDataset shard{plural} (`{DATA_FILES}`), {schema}, "
             + (f"config hash `{config_hash}`" if config_hash else "config hash unknown")
             + f". Each sample is {NUM_FRAMES} frames at "
             f"{FPS} fps, {HEIGHT}x{WIDTH}: a clean clip, an interrupted copy when an interruption was drawn, "
             "cameras, depth where known, and a frame graph of anchors, degraded chunks and recovery.", ""]
    if from_manifest:
        lines += ["Candidate windows: " + ", ".join(f"{count} {name}" for name, count in sorted(status.items()))
                  + " (`manifest.parquet` has one row each, with the reason of every rejection and failure).", ""]
    else:
        lines += ["Counted from the samples' own `meta.json`: the shards came without their manifest, so the "
                  "rejected and failed windows are not known.", ""]
    lines += ["## Counts", ""]
    lines += _counts("event group", Counter(row.event_group or "unknown" for row in samples))
    lines += _counts("interruption", Counter(row.interruption or "none" for row in samples))
    lines += _counts("source", Counter(row.source for row in samples))
    lines += _counts("license", Counter(row.license or "unknown" for row in samples))
    lines += ["Each sample's `meta.json` carries its license and attribution.", "", LOADING]
    return "\n".join(lines)


def write_dataset_card(out: Path, rows: list[ManifestRow], config: ConfigOrHash, shards: dict[str, int],
                       tmp: Path | None = None, versions: Mapping[str, int] | None = None,
                       from_manifest: bool = True) -> None:
    """OUT/README.md and OUT/info.json for ``rows`` (the final manifest) and ``shards`` (name -> bytes of every
    published shard), each written atomically. ``versions`` and ``from_manifest``: see the module's docstring."""
    out = Path(out)
    atomic_write_bytes(out / "README.md", render_card(rows, config, shards, versions, from_manifest).encode(), tmp)
    info = build_info(rows, config, shards, versions, from_manifest)
    atomic_write_bytes(out / "info.json", (json.dumps(info, indent=1) + "\n").encode(), tmp)
