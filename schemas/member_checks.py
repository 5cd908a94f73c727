"""The validator's registry of checks, and the checks of single members (types, checksums, arrays, videos).

Every check is one rule, a function of a sample's ``SampleFacts`` returning one sentence per problem; the checks of
the sample as a whole are in ``schemas.validation``, which runs them all. What the shard reader and the untrusted
parsers refuse on the way in (tar member types and headers, duplicates, JSON keys, MP4 sample tables) is registered
apart, in ``schemas.reader_checks``. Checks of an array's values run only on an array of its entry's dtype and shape
(``numeric``): any other is named by npy-dtype or npy-shape alone.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from schemas.constants import FPS, HEIGHT, NUM_FRAMES, WIDTH
from schemas.mp4 import Mp4Info
from schemas.sample import ENTRIES
from schemas.sample_io import CHECKSUMS
from schemas.sample_stream import VIDEOS, SampleFacts
from schemas.version import SchemaVersionError, at_least, check_readable

DOCUMENTS = ("graph.json", "meta.json")  # decoded into models by schemas.validation


@dataclass(frozen=True)
class Check:
    name: str
    rule: str
    run: Callable[[SampleFacts], list[str]]
    needs_models: bool  # runs only when meta.json and graph.json decode


CHECKS: dict[str, Check] = {}


def check(name: str, rule: str, needs_models: bool = True) -> Callable[[Callable], Callable]:
    def register(run: Callable[[SampleFacts], list[str]]) -> Callable[[SampleFacts], list[str]]:
        if name in CHECKS:
            raise ValueError(f"check {name} registered twice")
        CHECKS[name] = Check(name, rule, run, needs_models)
        return run
    return register


def readable_version(document: Any) -> tuple[int, int, int] | None:
    """A document's schema version when this reader reads it, else None."""
    try:
        return check_readable(document.get("schema_version", "1.0.0")) if isinstance(document, dict) else None
    except SchemaVersionError:
        return None


def since_1_1(facts: SampleFacts, ext: str = "meta.json") -> bool:
    version = readable_version(facts.documents.get(ext))
    return version is not None and at_least(version, "1.1.0")


def _as_declared(facts: SampleFacts, ext: str) -> bool:
    """The array has its entry's dtype and shape: what the checks of its values assume (else only npy-dtype or
    npy-shape names it; a string, datetime or void array never reaches arithmetic)."""
    array = facts.arrays.get(ext)
    return array is not None and array.dtype == ENTRIES[ext].dtype and array.shape == ENTRIES[ext].shape


def numeric(facts: SampleFacts, ext: str) -> np.ndarray | None:
    """A kept array of its entry's dtype and shape with finite values, else None."""
    array = facts.arrays.get(ext)
    return array.array if _as_declared(facts, ext) and array.finite else None  # type: ignore[union-attr]


# -- members ---------------------------------------------------------------------------------------------------

@check("forbidden-type", "only .mp4/.json/.npy/.txt members exist (nothing a reader could execute)", False)
def _forbidden(facts: SampleFacts) -> list[str]:
    return [f"entry '{ext}' has a forbidden type (only .mp4/.json/.npy/.txt)" for ext in facts.forbidden]


@check("required-entry", "mp4, graph.json and meta.json are present", False)
def _required(facts: SampleFacts) -> list[str]:
    return [f"missing required entry '{ext}'" for ext, spec in ENTRIES.items()
            if spec.required and ext not in facts.present and ext not in facts.refused]


@check("document-json", "graph.json and meta.json are bounded, strict UTF-8 JSON", False)
def _documents(facts: SampleFacts) -> list[str]:
    return [f"{ext}: {facts.errors[ext]}" for ext in DOCUMENTS if ext in facts.errors]


def _checksums(facts: SampleFacts) -> dict[str, str] | None:
    listed = facts.documents.get(CHECKSUMS, {}).get("sha256") if isinstance(facts.documents.get(CHECKSUMS), dict) \
        else None
    if isinstance(listed, dict) and all(isinstance(v, str) for v in listed.values()):
        return listed
    return None


@check("checksums-format", 'checksums.json is {"sha256": {entry: hex digest}}', False)
def _checksums_format(facts: SampleFacts) -> list[str]:
    if CHECKSUMS in facts.present and CHECKSUMS not in facts.rejected and _checksums(facts) is None:
        return [f"{CHECKSUMS}: not a {{\"sha256\": {{entry: digest}}}} object"]
    return []


@check("checksums-required", "a sample of schema 1.1.0 or later has checksums.json", False)
def _checksums_required(facts: SampleFacts) -> list[str]:
    if CHECKSUMS not in facts.present and CHECKSUMS not in facts.refused and since_1_1(facts):
        return [f"{CHECKSUMS} is missing: it is required from schema 1.1.0 (this sample is "
                f"{facts.documents['meta.json'].get('schema_version')})"]
    return []


@check("checksums-unlisted", "checksums.json lists every other member", False)
def _checksums_unlisted(facts: SampleFacts) -> list[str]:
    listed = _checksums(facts)
    others = facts.present | set(facts.refused)
    return [] if listed is None else [f"{ext}: not covered by {CHECKSUMS}"
                                      for ext in sorted(others - set(listed) - {CHECKSUMS})]


@check("checksums-absent", "every member checksums.json lists is present", False)
def _checksums_absent(facts: SampleFacts) -> list[str]:
    listed = _checksums(facts)
    present = facts.present | set(facts.refused)
    return [] if listed is None else [f"{ext}: listed in {CHECKSUMS} but absent"
                                      for ext in sorted(set(listed) - present)]


@check("checksums-digest", "every member hashes to its checksums.json digest", False)
def _checksums_digest(facts: SampleFacts) -> list[str]:
    listed = _checksums(facts) or {}
    return [f"{ext}: content differs from its {CHECKSUMS} digest (changed after packing)"
            for ext in sorted(set(listed) & facts.present) if facts.digests[ext] != listed[ext]]


@check("unknown-entry", "entries of a newer minor are harmless: a plain .npy header, bounded JSON", False)
def _unknown(facts: SampleFacts) -> list[str]:
    return [f"{ext}: {why}" for ext, why in sorted(facts.unknown.items())]


@check("npy-plain", "every .npy entry is a plain array (no pickle, header agrees with its length)", False)
def _npy_plain(facts: SampleFacts) -> list[str]:
    return [f"{ext}: {facts.errors[ext]}" for ext in ENTRIES if ext.endswith(".npy") and ext in facts.errors]


@check("npy-dtype", "every .npy entry has its entry's dtype", False)
def _npy_dtype(facts: SampleFacts) -> list[str]:
    return [f"{ext} dtype is {a.dtype}, expected {ENTRIES[ext].dtype}" for ext, a in facts.arrays.items()
            if a.dtype != ENTRIES[ext].dtype]


@check("npy-shape", "every .npy entry has its entry's shape", False)
def _npy_shape(facts: SampleFacts) -> list[str]:
    return [f"{ext} shape is {a.shape}, expected {ENTRIES[ext].shape}" for ext, a in facts.arrays.items()
            if a.shape != ENTRIES[ext].shape]


@check("npy-finite", "arrays hold finite values", False)
def _npy_finite(facts: SampleFacts) -> list[str]:
    return [f"{ext} has non-finite values" for ext, a in facts.arrays.items()
            if _as_declared(facts, ext) and not a.finite]


@check("text-utf8", "txt and degraded.txt are UTF-8", False)
def _text(facts: SampleFacts) -> list[str]:
    return [f"{ext}: {facts.errors[ext]}" for ext in ("txt", "degraded.txt") if ext in facts.errors]


def _videos(facts: SampleFacts, problem: Callable[[str, Mp4Info], str | None]) -> list[str]:
    out = []
    for ext in VIDEOS:
        info = facts.videos.get(ext)
        if isinstance(info, Mp4Info) and (text := problem(ext, info)) is not None:
            out.append(text)
    return out


@check("video-decodes", "mp4 and degraded.mp4 decode within bounded frames, pixels and time", False)
def _video_decodes(facts: SampleFacts) -> list[str]:
    return [f"{ext} does not decode: {info}" for ext, info in facts.videos.items() if isinstance(info, str)]


@check("video-frames", f"videos hold {NUM_FRAMES} frames", False)
def _video_frames(facts: SampleFacts) -> list[str]:
    return _videos(facts, lambda ext, i: f"{ext} has more than {NUM_FRAMES} frames (decoding stopped there)"
                   if i.more else None if i.frames == NUM_FRAMES else
                   f"{ext} has {i.frames} frames, expected {NUM_FRAMES}")


@check("video-fps", f"videos are {FPS} fps", False)
def _video_fps(facts: SampleFacts) -> list[str]:
    return _videos(facts, lambda ext, i: None if abs(i.fps - FPS) <= 1e-3 else f"{ext} is {i.fps:g} fps, "
                   f"expected {FPS}")


@check("video-size", f"videos are {HEIGHT}x{WIDTH}", False)
def _video_size(facts: SampleFacts) -> list[str]:
    return _videos(facts, lambda ext, i: None if (i.height, i.width) == (HEIGHT, WIDTH) else
                   f"{ext} is {i.height}x{i.width}, expected {HEIGHT}x{WIDTH}")


@check("video-codec", "videos are H.264", False)
def _video_codec(facts: SampleFacts) -> list[str]:
    return _videos(facts, lambda ext, i: None if i.codec == "h264" else f"{ext} codec is {i.codec}, expected h264")


@check("schema-version", "graph.json and meta.json are of this reader's major version", False)
def _schema_version(facts: SampleFacts) -> list[str]:
    return [problem for name, problem in facts.decode_failures.values() if name == "schema-version"]


@check("model", "graph.json and meta.json match their models", False)
def _model(facts: SampleFacts) -> list[str]:
    return [problem for name, problem in facts.decode_failures.values() if name == "model"]
