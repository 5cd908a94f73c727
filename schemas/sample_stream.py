"""One sample's members read as they stream, kept as facts rather than bytes: digests, parsed documents, what each
array and video holds. The validator's checks (``schemas.validation``) run on these facts.

Only what a check needs stays: the parsed JSON documents, the captions and the small camera arrays. Depth arrays
are judged and dropped; a video is written to a temporary file, probed there and deleted; members of a newer minor
are proven harmless (a .npy header, a bounded JSON document) and dropped. So memory holds one member at a time,
capped by its entry, plus these facts, whatever the sample holds.
"""
from __future__ import annotations

import hashlib
import tempfile
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, BinaryIO

import numpy as np

from schemas.constants import HEIGHT, NUM_FRAMES, WIDTH
from schemas.graph import FrameGraph
from schemas.mp4 import Mp4Info, Mp4StructureError, probe_mp4
from schemas.reader_checks import Refusal
from schemas.sample import ENTRIES, SampleMeta
from schemas.untrusted import MAX_NPY_HEADER, UntrustedError, load_json, load_npy_checked, npy_header

ALLOWED_TYPES = ("mp4", "json", "npy", "txt")  # never pickles: a reader must not execute what it loads
VIDEOS = ("mp4", "degraded.mp4")
KEPT_ARRAYS = ("camera.npy", "intrinsics.npy", "degraded_camera.npy", "degraded_intrinsics.npy")  # a few KiB each
# Decoding's time limit, a safety net behind the structural bounds of schemas.mp4 (sample tables, packets, bytes):
# an 81-frame 480x832 clip at crf 23 (about 0.2 MiB) decodes in 0.07-0.3 s on one core, at crf 10 (1.6 MiB) in
# 0.8-1.7 s, at crf 0 (5.6 MiB) in 1.8 s; decoding time grows with the bytes, so the limit does too.
MP4_MAX_SECONDS = 2.0
MP4_SECONDS_PER_MIB = 1.0
_PROBED: OrderedDict[str, Mp4Info | str] = OrderedDict()  # by SHA-256: the same bytes probe the same
_PROBED_MAX = 64


@dataclass
class ArrayFacts:
    dtype: str
    shape: tuple[int, ...]
    finite: bool
    array: np.ndarray | None = None  # kept for the camera arrays only


@dataclass
class SampleFacts:
    """What was read of one sample. ``errors``: known entries that could not be read as their type."""

    key: str
    decode_video: bool = True
    refused: dict[str, str] = field(default_factory=dict)  # entry -> why the shard reader did not read it
    unlisted: int = 0  # further members the reader refused, counted only
    broken: str | None = None  # why the shard could not be read past this sample
    digests: dict[str, str] = field(default_factory=dict)  # every member read -> SHA-256
    forbidden: list[str] = field(default_factory=list)
    documents: dict[str, Any] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    arrays: dict[str, ArrayFacts] = field(default_factory=dict)
    texts: dict[str, str] = field(default_factory=dict)
    videos: dict[str, Mp4Info | str] = field(default_factory=dict)  # the probe, or why it does not decode
    unknown: dict[str, str] = field(default_factory=dict)  # newer-minor entries not proven harmless -> why
    meta: SampleMeta | None = None  # set by the validator once the documents decode
    graph: FrameGraph | None = None
    decode_failures: dict[str, tuple[str, str]] = field(default_factory=dict)  # entry -> (check, problem)
    rejected: dict[str, Refusal] = field(default_factory=dict)  # entry read, refused by a parser's reader check

    @property
    def present(self) -> set[str]:
        return set(self.digests)


def _kind(ext: str) -> str:
    return f".{ext}".rsplit(".", 1)[-1]


def _probe(handle: BinaryIO, digest: str, size: int) -> Mp4Info | str:
    """The video's facts, or why it does not decode (a Refusal when its structure was refused before decoding),
    bounded in frames, pixels and time."""
    cached = _PROBED.get(digest)
    if cached is not None:
        _PROBED.move_to_end(digest)
        return cached
    seconds = round(MP4_MAX_SECONDS + MP4_SECONDS_PER_MIB * size / 2**20, 1)
    try:
        result: Mp4Info | str = probe_mp4(handle, max_frames=NUM_FRAMES, max_seconds=seconds,
                                          max_pixels=4 * HEIGHT * WIDTH)
    except Exception as exc:  # noqa: BLE001 - any decoder error is a finding, not a crash
        result = Refusal(exc.check, str(exc)) if isinstance(exc, Mp4StructureError) else \
            f"{type(exc).__name__}: {exc}"
    _PROBED[digest] = result
    if len(_PROBED) > _PROBED_MAX:
        _PROBED.popitem(last=False)
    return result


class SampleReader:
    """Feed a sample's members one by one (``add``); ``facts`` holds what the checks need."""

    def __init__(self, key: str, decode_video: bool = True) -> None:
        self.facts = SampleFacts(key, decode_video)

    def add(self, ext: str, size: int, chunks: Iterable[bytes]) -> None:
        """One member: ``size`` bytes arriving as ``chunks`` (hashed as they come, judged at the end)."""
        facts, digest = self.facts, hashlib.sha256()
        kind = _kind(ext)
        if kind not in ALLOWED_TYPES:
            facts.forbidden.append(ext)
        if ext in VIDEOS and facts.decode_video and kind in ALLOWED_TYPES:
            with tempfile.TemporaryFile(prefix="remind-validate-") as spool:
                for chunk in chunks:
                    digest.update(chunk)
                    spool.write(chunk)
                spool.seek(0)
                facts.digests[ext] = digest.hexdigest()
                result = _probe(spool, facts.digests[ext], size)
            if isinstance(result, Refusal):
                facts.rejected[ext] = result
            else:
                facts.videos[ext] = result
            return
        keep = kind in ("json", "npy") or (kind == "txt" and ext in ENTRIES)
        head = MAX_NPY_HEADER + 16 if kind == "npy" and ext not in ENTRIES else None
        parts: list[bytes] = []
        held = 0
        for chunk in chunks:
            digest.update(chunk)
            if keep and (head is None or held < head):
                parts.append(chunk)
                held += len(chunk)
        facts.digests[ext] = digest.hexdigest()
        if keep and kind in ALLOWED_TYPES:
            self._judge(ext, kind, b"".join(parts), size)

    def add_bytes(self, ext: str, data: bytes) -> None:
        self.add(ext, len(data), [data])

    def _judge(self, ext: str, kind: str, data: bytes, size: int) -> None:
        facts, known = self.facts, ext in ENTRIES
        try:
            if kind == "json":
                document = load_json(data)
                if known:
                    facts.documents[ext] = document
            elif kind == "npy" and not known:
                npy_header(data, size)
            elif kind == "npy":
                array = load_npy_checked(data)
                finite = array.dtype.kind not in "fc" or bool(np.isfinite(array).all())
                facts.arrays[ext] = ArrayFacts(str(array.dtype), tuple(array.shape), finite,
                                               array if ext in KEPT_ARRAYS else None)
            else:
                facts.texts[ext] = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            facts.errors[ext] = f"not UTF-8 text ({exc.reason} at byte {exc.start})"
        except (UntrustedError, ValueError) as exc:
            if isinstance(exc, UntrustedError) and exc.check:
                facts.rejected[ext] = Refusal(exc.check, str(exc))
            elif not known:
                facts.unknown[ext] = str(exc)
            elif kind == "npy":
                facts.errors[ext] = f"not a plain .npy array ({exc})"
            else:
                facts.errors[ext] = str(exc)


def read_raw(raw: dict[str, Any], decode_video: bool = True) -> SampleFacts:
    """The facts of a sample given as a webdataset-style dict ({"__key__": ..., ext: bytes}; refused members in
    ``__problems__`` as "ext: why" with their entries in ``__skipped__``)."""
    reader = SampleReader(str(raw.get("__key__") or ""), decode_video)
    skipped = list(raw.get("__skipped__", ()))
    for ext, problem in zip(skipped, raw.get("__problems__", ())):
        reader.facts.refused[ext] = str(problem).removeprefix(f"{ext}: ")
    for problem in list(raw.get("__problems__", ()))[len(skipped):]:
        reader.facts.broken = str(problem).removeprefix("the shard breaks after this sample's members: ")
    for ext, value in raw.items():
        if ext.startswith("__") or value is None:
            continue
        reader.add_bytes(ext, value.encode() if isinstance(value, str) else bytes(value))
    return reader.facts
