"""Turning a sample into tar members and back. The packer, the validator and training all go through here."""
from __future__ import annotations

import hashlib
import io
import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from pydantic import ValidationError

from schemas.graph import FrameGraph
from schemas.mp4 import decode_mp4
from schemas.sample import ENTRIES, SampleMeta
from schemas.tolerant import read_model
from schemas.untrusted import UntrustedError, load_json, load_npy_checked
from schemas.version import SchemaVersionError, check_readable

CHECKSUMS = "checksums.json"


def npy_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, np.ascontiguousarray(array), allow_pickle=False)
    return buffer.getvalue()


def load_npy(data: bytes) -> np.ndarray:
    """A plain array; never a pickle (the header is checked before any data is read). Raises ValueError."""
    return load_npy_checked(data)


def json_bytes(obj: Any) -> bytes:
    return (json.dumps(obj, sort_keys=True, separators=(",", ":")) + "\n").encode()


@dataclass
class Sample:
    """One decoded sample. Frames are decoded on demand: most readers need only some of them."""

    key: str
    mp4: bytes
    graph: FrameGraph
    meta: SampleMeta
    degraded_mp4: bytes | None = None
    camera: np.ndarray | None = None
    intrinsics: np.ndarray | None = None
    degraded_camera: np.ndarray | None = None
    degraded_intrinsics: np.ndarray | None = None
    depth: np.ndarray | None = None
    depth_conf: np.ndarray | None = None
    caption: str = ""
    degraded_caption: str = ""  # degraded.txt: the interruption in words
    extra: dict[str, bytes] = field(default_factory=dict)  # entries this reader does not know (newer minor)
    unknown_fields: dict[str, dict[str, Any]] = field(default_factory=dict)  # {"meta.json": {"a.b": value}}

    def clean_frames(self, size: tuple[int, int] | None = None) -> np.ndarray:
        return decode_mp4(self.mp4, size)

    def degraded_frames(self, size: tuple[int, int] | None = None) -> np.ndarray:
        return decode_mp4(self.degraded_mp4 if self.degraded_mp4 is not None else self.mp4, size)

    def to_members(self) -> dict[str, bytes]:
        """Tar members without the key prefix: {"mp4": ..., "graph.json": ...}."""
        members: dict[str, bytes] = {
            "mp4": self.mp4,
            "graph.json": json_bytes(self.graph.model_dump(mode="json")),
            "meta.json": json_bytes(self.meta.model_dump(mode="json")),
        }
        if self.degraded_mp4 is not None:
            members["degraded.mp4"] = self.degraded_mp4
        arrays = {"camera.npy": self.camera, "intrinsics.npy": self.intrinsics,
                  "degraded_camera.npy": self.degraded_camera, "degraded_intrinsics.npy": self.degraded_intrinsics,
                  "depth.npy": self.depth, "depth_conf.npy": self.depth_conf}
        for ext, array in arrays.items():
            if array is not None:
                members[ext] = npy_bytes(array.astype(ENTRIES[ext].dtype, copy=False))
        if self.caption:
            members["txt"] = self.caption.encode()
        if self.degraded_caption:
            members["degraded.txt"] = self.degraded_caption.encode()
        return members


def with_checksums(members: dict[str, bytes]) -> dict[str, bytes]:
    """``members`` plus ``checksums.json`` (SHA-256 of every other member), first: what the packer writes."""
    sums = {ext: hashlib.sha256(data).hexdigest() for ext, data in members.items() if ext != CHECKSUMS}
    return {CHECKSUMS: json_bytes({"sha256": sums}), **{k: v for k, v in members.items() if k != CHECKSUMS}}


def one_line(exc: ValidationError) -> str:
    """A pydantic error as one line: 'field.path: message; ...'."""
    parts = []
    for error in exc.errors():
        where = ".".join(str(p) for p in error["loc"])
        parts.append(f"{where}: {error['msg']}" if where else error["msg"])
    return "; ".join(parts).replace("\n", " ")


def _as_bytes(value: Any) -> bytes:
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    if isinstance(value, str):
        return value.encode()
    raise TypeError(f"expected raw bytes, got {type(value).__name__}")


def decode_sample(raw: dict[str, Any]) -> Sample:
    """Parse a raw webdataset sample ({"__key__": ..., "mp4": bytes, "graph.json": bytes, ...}).

    Accepts the dicts produced by ``webdataset`` without decoders and by ``ray.data.read_webdataset`` with
    ``decoder=None``. Raises ValueError naming the entry on any problem.
    """
    key = raw.get("__key__")
    if not key:
        raise ValueError("sample has no __key__")
    entries = {k: v for k, v in raw.items() if not k.startswith("__") and v is not None}
    for ext, spec in ENTRIES.items():
        if spec.required and ext not in entries:
            raise ValueError(f"missing required entry '{ext}'")
    unknown: dict[str, dict[str, Any]] = {}
    graph = _read_json(FrameGraph, "graph.json", _as_bytes(entries["graph.json"]), unknown)
    meta = _read_json(SampleMeta, "meta.json", _as_bytes(entries["meta.json"]), unknown)
    arrays: dict[str, np.ndarray | None] = {}
    for ext in (e for e, spec in ENTRIES.items() if spec.dtype is not None):
        if ext in entries:
            try:
                arrays[ext] = load_npy(_as_bytes(entries[ext]))
            except ValueError as exc:
                raise ValueError(f"{ext}: not a plain .npy array ({exc})") from exc
        else:
            arrays[ext] = None
    known = set(ENTRIES)
    return Sample(
        key=key, mp4=_as_bytes(entries["mp4"]), graph=graph, meta=meta,  # type: ignore[arg-type]
        degraded_mp4=_as_bytes(entries["degraded.mp4"]) if "degraded.mp4" in entries else None,
        camera=arrays["camera.npy"], intrinsics=arrays["intrinsics.npy"],
        degraded_camera=arrays["degraded_camera.npy"], degraded_intrinsics=arrays["degraded_intrinsics.npy"],
        depth=arrays["depth.npy"], depth_conf=arrays["depth_conf.npy"],
        caption=_as_bytes(entries["txt"]).decode() if "txt" in entries else "",
        degraded_caption=_as_bytes(entries["degraded.txt"]).decode() if "degraded.txt" in entries else "",
        extra={k: _as_bytes(v) for k, v in entries.items() if k not in known},
        unknown_fields={k: v for k, v in unknown.items() if v},
    )


def _read_json(model: type[FrameGraph] | type[SampleMeta], ext: str, data: bytes,
               unknown: dict[str, dict[str, Any]]) -> FrameGraph | SampleMeta:
    """Bounded parse, version check, then the model with undeclared (newer-minor) fields set aside and kept."""
    try:
        parsed = load_json(data)
        if not isinstance(parsed, dict):
            raise UntrustedError(f"expected a JSON object, got {type(parsed).__name__}")
        check_readable(parsed.get("schema_version", "1.0.0"))
        instance, unknown[ext] = read_model(model, parsed)
    except ValidationError as exc:
        raise ValueError(f"{ext}: {one_line(exc)}") from exc
    except (UntrustedError, SchemaVersionError) as exc:
        raise ValueError(f"{ext}: {exc}") from exc
    return instance  # type: ignore[return-value]
