"""Checking one packed sample against the format: the checks of the sample as a whole, and the runner.

The shard reader hands members to ``schemas.sample_stream`` as they stream; every check is a function of the
resulting ``SampleFacts``, registered in ``CHECKS`` (``schemas.member_checks`` holds the registry and the checks of
single members). A test breaks each rule with a sample of its own and fails when a check has no such case.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from pydantic import ValidationError

from schemas.graph import FrameGraph, InterruptionKind
from schemas.graph_checks import alignment_problems, gap_problems, hidden_problems
from schemas.member_checks import CHECKS, Check, check, numeric, since_1_1
from schemas.reader_checks import check_of
from schemas.sample import SampleMeta
from schemas.sample_io import one_line
from schemas.sample_stream import SampleFacts, read_raw
from schemas.tolerant import read_model
from schemas.version import SchemaVersionError, check_readable

__all__ = ["CHECKS", "Check", "check_sample", "findings"]
MODELS: dict[str, type[FrameGraph] | type[SampleMeta]] = {"graph.json": FrameGraph, "meta.json": SampleMeta}


def _decode(facts: SampleFacts) -> dict[str, tuple[str, str]]:
    """Set facts.meta/graph from the parsed documents; {entry: (check, problem)} for those that do not decode."""
    failed: dict[str, tuple[str, str]] = {}
    for ext, model in MODELS.items():
        document = facts.documents.get(ext)
        if document is None:
            continue
        try:
            if not isinstance(document, dict):
                raise TypeError(f"expected a JSON object, got {type(document).__name__}")
            check_readable(document.get("schema_version", "1.0.0"))
            setattr(facts, ext.split(".")[0], read_model(model, document)[0])
        except SchemaVersionError as exc:
            failed[ext] = ("schema-version", f"{ext}: {exc}")
        except ValidationError as exc:
            failed[ext] = ("model", f"{ext}: {one_line(exc)}")
        except TypeError as exc:
            failed[ext] = ("model", f"{ext}: {exc}")
    return failed



# -- the sample as a whole (meta.json and graph.json decoded) --------------------------------------------------

@check("meta-key", "meta.json's key is the sample's key")
def _meta_key(facts: SampleFacts) -> list[str]:
    key = facts.meta.key  # type: ignore[union-attr]
    return [] if key == facts.key else [f"meta.json key '{key}' differs from __key__ '{facts.key}'"]


def _graphsince_1_1(facts: SampleFacts, rule: Callable[[FrameGraph], list[str]]) -> list[str]:
    """Rules added in 1.1.0 bind graphs written since (by their own schema_version). The graph's own invariants
    (``FrameGraph.problems``) hold already: the model refuses a graph that breaks them (check "model")."""
    graph = facts.graph
    if graph is None or not since_1_1(facts, "graph.json"):
        return []
    return [f"graph.json: {p}" for p in rule(graph)]


@check("graph-alignment", "1.1.0: the interruption lies on latent-chunk boundaries, anchors and recovery inside")
def _graph_alignment(facts: SampleFacts) -> list[str]:
    return _graphsince_1_1(facts, alignment_problems)


@check("graph-gaps", "1.1.0: memory-edge gaps are measured in frames between their chunks")
def _graph_gaps(facts: SampleFacts) -> list[str]:
    return _graphsince_1_1(facts, gap_problems)


@check("graph-hidden", "1.1.0: an interrupted graph has event visibility and a hidden interval of whole chunks")
def _graph_hidden(facts: SampleFacts) -> list[str]:
    return _graphsince_1_1(facts, hidden_problems)


def _kind(facts: SampleFacts) -> InterruptionKind:
    return facts.graph.interruption.kind  # type: ignore[union-attr]


@check("degraded-text", "1.1.0: degraded.txt is present exactly when degraded.mp4 is")
def _degraded_text(facts: SampleFacts) -> list[str]:
    has_video, has_text = "degraded.mp4" in facts.present, bool(facts.texts.get("degraded.txt"))
    if since_1_1(facts) and has_video != has_text:
        return ["degraded.txt must be present exactly when degraded.mp4 is"]
    return []


@check("meta-interruption", "meta.json's interruption is the graph's")
def _meta_interruption(facts: SampleFacts) -> list[str]:
    meta, kind = facts.meta.interruption, _kind(facts)  # type: ignore[union-attr]
    return [] if meta == kind else [f"meta.json interruption '{meta.value}' differs from graph's '{kind.value}'"]


@check("degraded-extra", "no degraded.mp4 in a clean (none) sample")
def _degraded_extra(facts: SampleFacts) -> list[str]:
    if _kind(facts) is InterruptionKind.none and "degraded.mp4" in facts.present:
        return ["degraded.mp4 present but the interruption kind is none"]
    return []


@check("degraded-missing", "an interrupted sample has degraded.mp4")
def _degraded_missing(facts: SampleFacts) -> list[str]:
    kind = _kind(facts)
    if kind is not InterruptionKind.none and "degraded.mp4" not in facts.present | set(facts.refused):
        return [f"degraded.mp4 missing for interruption kind {kind.value}"]
    return []


def _pair(facts: SampleFacts, first: str, second: str) -> list[str]:
    if (first in facts.present) != (second in facts.present):
        return [f"{first} and {second} must be present together"]
    return []


@check("camera-pair", "camera.npy and intrinsics.npy come together")
def _camera_pair(facts: SampleFacts) -> list[str]:
    return _pair(facts, "camera.npy", "intrinsics.npy")


@check("degraded-camera-pair", "degraded_camera.npy and degraded_intrinsics.npy come together")
def _degraded_camera_pair(facts: SampleFacts) -> list[str]:
    return _pair(facts, "degraded_camera.npy", "degraded_intrinsics.npy")


@check("degraded-camera-video", "degraded_camera.npy comes with degraded.mp4")
def _degraded_camera_video(facts: SampleFacts) -> list[str]:
    if "degraded_camera.npy" in facts.present and "degraded.mp4" not in facts.present:
        return ["degraded_camera.npy present without degraded.mp4"]
    return []


def _camera(facts: SampleFacts) -> np.ndarray | None:
    array = numeric(facts, "camera.npy")
    return None if array is None else array.astype(np.float64)


@check("camera-frame0", "camera.npy's frame 0 is the identity")
def _camera_frame0(facts: SampleFacts) -> list[str]:
    cam = _camera(facts)
    return [] if cam is None or np.allclose(cam[0], np.eye(4), atol=1e-5) else ["camera.npy frame 0 is not the identity"]


@check("camera-orthonormal", "camera.npy's rotations are orthonormal")
def _camera_orthonormal(facts: SampleFacts) -> list[str]:
    cam = _camera(facts)
    if cam is None:
        return []
    rot = cam[:, :3, :3]
    err = float(np.abs(rot @ rot.transpose(0, 2, 1) - np.eye(3)).max())
    return [f"camera.npy rotations are not orthonormal (max error {err:.2e})"] if err > 1e-3 else []


@check("camera-bottom-row", "camera.npy's bottom rows are [0, 0, 0, 1]")
def _camera_bottom_row(facts: SampleFacts) -> list[str]:
    cam = _camera(facts)
    if cam is None or np.allclose(cam[:, 3], [0, 0, 0, 1], atol=1e-6):
        return []
    return ["camera.npy bottom rows are not [0, 0, 0, 1]"]


@check("intrinsics-focal", "intrinsics.npy's focal lengths are positive")
def _intrinsics_focal(facts: SampleFacts) -> list[str]:
    k = numeric(facts, "intrinsics.npy")
    if k is None:
        return []
    if (k[:, 0, 0] <= 0).any() or (k[:, 1, 1] <= 0).any():
        return ["intrinsics.npy has non-positive focal lengths"]
    return []


@check("depth-flag", "depth.npy only when meta.geometry.has_depth")
def _depth_flag(facts: SampleFacts) -> list[str]:
    if "depth.npy" in facts.present and facts.meta.geometry.has_depth is False:  # type: ignore[union-attr]
        return ["depth.npy present but meta.geometry.has_depth is false"]
    return []


@check("geometry-known", "camera.npy is present exactly when meta.geometry.known")
def _geometry_known(facts: SampleFacts) -> list[str]:
    known, present = facts.meta.geometry.known, "camera.npy" in facts.present  # type: ignore[union-attr]
    if present and not known:
        return ["camera.npy present but meta.geometry.known is false"]
    if known and not present and "camera.npy" not in facts.refused:
        return ["meta.geometry.known is true but camera.npy is missing"]
    return []


@check("caption-none-txt", "no txt when meta.caption_source is none")
def _caption_none_txt(facts: SampleFacts) -> list[str]:
    if facts.meta.caption_source == "none" and "txt" in facts.present:  # type: ignore[union-attr]
        return ["txt present but meta.caption_source is none"]
    return []


@check("caption-none-note", "meta.caption_note says why when meta.caption_source is none")
def _caption_none_note(facts: SampleFacts) -> list[str]:
    meta = facts.meta
    if meta.caption_source == "none" and not meta.caption_note:  # type: ignore[union-attr]
        return ["meta.caption_source is none without a caption_note saying why"]
    return []


@check("caption-txt", "txt is present when meta.caption_source names where captions come from")
def _caption_txt(facts: SampleFacts) -> list[str]:
    source = facts.meta.caption_source  # type: ignore[union-attr]
    if source not in (None, "none") and "txt" not in facts.present | set(facts.refused):
        return [f"meta.caption_source is {source} but txt is missing"]
    return []


# -- running them ----------------------------------------------------------------------------------------------

def findings(facts: SampleFacts) -> list[tuple[str, str]]:
    """(check name, problem) for everything wrong with the sample; what the reader refused comes first."""
    out = [(check_of(why), f"{ext}: {why}") for ext, why in facts.refused.items()]
    out += [(check_of(why), f"{ext}: {why}") for ext, why in facts.rejected.items()]
    if facts.unlisted:
        out.append(("reader", f"{facts.unlisted} more members refused (not listed)"))
    if facts.broken:
        out.append(("reader", f"the shard breaks after this sample's members: {facts.broken}"))
    facts.decode_failures = _decode(facts)
    models = facts.meta is not None and facts.graph is not None
    for entry in CHECKS.values():
        if (models or not entry.needs_models) and (problems := entry.run(facts)):
            out += [(entry.name, problem) for problem in problems]
    return out


def check_sample(raw: dict[str, Any], decode_video: bool = True) -> list[str]:
    """All problems of one raw sample ({"__key__": ..., ext: bytes}). Empty list = valid."""
    return [problem for _, problem in findings(read_raw(raw, decode_video))]
