"""JSON Schemas generated from the models; `schemas/json/*.schema.json` are the committed copies."""
from __future__ import annotations

import json
from pathlib import Path

from pydantic import BaseModel

from schemas.graph import FrameGraph
from schemas.manifest import ManifestRow
from schemas.sample import SampleMeta

JSON_DIR = Path(__file__).parent / "json"
MODELS: dict[str, type[BaseModel]] = {"graph": FrameGraph, "meta": SampleMeta, "manifest-row": ManifestRow}


def generate() -> dict[str, str]:
    """File name -> JSON text, exactly as committed."""
    return {f"{name}.schema.json": json.dumps(model.model_json_schema(), indent=2, sort_keys=True) + "\n"
            for name, model in MODELS.items()}


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
