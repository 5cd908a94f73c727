"""What a source says about its clips (license, credit, caption, the dataset's scores) as meta and manifest fields.

Sources put these in ``SourceItem.provenance`` under fixed keys: ``license``, ``attribution`` (a credit line),
``caption`` (see ``tasks.captions``), ``dataset_scores`` ({aesthetic, motion, temporal_consistency}: floats) and
``dataset_labels`` ({camera_motion}: strings). Pexels items keep their structured attribution.
"""
from __future__ import annotations

from typing import Any

from tasks.captions import caption_of
from tasks.records import SourceItem, Window


def credit_line(provenance: dict[str, Any]) -> str | None:
    if provenance.get("attribution"):
        return str(provenance["attribution"])
    if "pexels_id" in provenance:
        return f"{provenance.get('creator_name', '')} ({provenance.get('page_url', '')}) on Pexels"
    return None


def meta_fields(window: Window) -> dict[str, Any]:
    """Extra ``SampleMeta`` fields of a window."""
    provenance = window.item.provenance
    credit = credit_line(provenance) if "pexels_id" not in provenance else None
    return {"attribution_text": credit,
            "dataset_scores": {k: float(v) for k, v in (provenance.get("dataset_scores") or {}).items()},
            "dataset_labels": {k: str(v) for k, v in (provenance.get("dataset_labels") or {}).items()}}


def manifest_fields(item: SourceItem, window: Window | None) -> dict[str, Any]:
    """Extra ``ManifestRow`` fields of an input (and its window, when there is one)."""
    provenance = item.provenance
    scores = provenance.get("dataset_scores") or {}
    return {"license": provenance.get("license"), "attribution": credit_line(provenance),
            "caption_source": caption_of(window).source if window is not None else None,
            "dataset_aesthetic": scores.get("aesthetic"), "dataset_motion": scores.get("motion"),
            "dataset_temporal_consistency": scores.get("temporal_consistency"),
            "dataset_camera_motion": (provenance.get("dataset_labels") or {}).get("camera_motion")}
