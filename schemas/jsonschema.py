"""JSON Schemas generated from the models; `schemas/json/*.schema.json` are the committed copies."""
from __future__ import annotations

import json
from pathlib import Path

from pydantic import BaseModel

from schemas.graph import FrameGraph
from schemas.manifest import ManifestRow
from schemas.sample import ENTRIES, SampleMeta
from schemas.version import SCHEMA_VERSION

JSON_DIR = Path(__file__).parent / "json"
MODELS: dict[str, type[BaseModel]] = {"graph": FrameGraph, "meta": SampleMeta, "manifest-row": ManifestRow}


def sample_schema() -> dict:
    """One sample as a whole: its tar members by entry, with each .npy's dtype and shape and each size cap."""
    properties: dict[str, dict] = {}
    for ext, spec in ENTRIES.items():
        entry: dict = {"description": spec.doc, "maxBytes": spec.max_bytes}
        if spec.dtype is not None and spec.shape is not None:
            entry["description"] = f"{spec.dtype} array of shape {spec.shape} (.npy, no pickle): {spec.doc}"
            entry.update({"contentMediaType": "application/x-npy", "npyDtype": spec.dtype,
                          "npyShape": list(spec.shape)})
        elif ext.endswith("mp4"):
            entry["contentMediaType"] = "video/mp4"
        elif ext == "graph.json":
            entry.update({"contentMediaType": "application/json", "contentSchema": {"$ref": "graph.schema.json"}})
        elif ext == "meta.json":
            entry.update({"contentMediaType": "application/json", "contentSchema": {"$ref": "meta.schema.json"}})
        elif ext.endswith(".json"):
            entry["contentMediaType"] = "application/json"
        else:
            entry["contentMediaType"] = "text/plain; charset=utf-8"
        properties[ext] = entry
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": f"ReMind training sample, schema {SCHEMA_VERSION}",
        "description": "The tar members sharing one __key__ in a WebDataset shard, by entry (member name "
                       "'<key>.<entry>'). Arrays are .npy files with exactly the dtype and shape given; no entry is "
                       "ever pickled. Readers of the same major version keep entries they do not know.",
        "type": "object",
        "properties": properties,
        "required": [ext for ext, spec in ENTRIES.items() if spec.required],
        "additionalProperties": True,
    }


def generate() -> dict[str, str]:
    """File name -> JSON text, exactly as committed."""
    documents = {f"{name}.schema.json": model.model_json_schema() for name, model in MODELS.items()}
    documents["sample.schema.json"] = sample_schema()
    return {name: json.dumps(doc, indent=2, sort_keys=True) + "\n" for name, doc in documents.items()}


def write(directory: Path = JSON_DIR) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, text in generate().items():
        path = directory / name
        path.write_text(text)
        paths.append(path)
    return paths


if __name__ == "__main__":
    for written in write():
        print(written)
