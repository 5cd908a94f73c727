"""What a sample and its manifest row say about a window: the sample's ``meta.json`` and the manifest's row."""
from __future__ import annotations

from typing import Any

from engine.run import RunContext
from schemas.manifest import ManifestRow
from schemas.sample import Attribution, GeometryMeta, SampleMeta, SourceInfo
from tasks.augment import Augmented
from tasks.captions import caption_of
from tasks.clip import Clip, Outcome
from tasks.records import GroundTruth, Window
from tasks.sources.facts import manifest_fields, meta_fields
from taxonomy import load_taxonomy


def _attribution(provenance: dict[str, Any]) -> Attribution | None:
    if "pexels_id" not in provenance:
        return None
    return Attribution(
        creator_name=str(provenance.get("creator_name", "")), creator_url=str(provenance.get("creator_url", "")),
        page_url=str(provenance.get("page_url", "")), video_id=str(provenance["pexels_id"]),
        license=str(provenance.get("license", "")), license_url=str(provenance.get("license_url", "")),
        retrieved_at=str(provenance.get("retrieved_at", "")), query=str(provenance.get("query", "")),
        event_type=str(provenance.get("event_type", "")))


def _event_group(tags: list[str]) -> str | None:
    taxonomy = load_taxonomy()
    for tag in tags:
        try:
            return taxonomy.group_of(tag)
        except KeyError:
            continue
    return None


def truth_meta(truth: GroundTruth) -> dict[str, Any]:
    """A sample's ``meta.truth``: the event and the truth's scalar facts."""
    return {"event_type": truth.event_type, "loop_return_frame": truth.loop_return_frame,
            **{k: v for k, v in truth.facts().items() if isinstance(v, (int, float, str, bool))}}


def sample_meta(window: Window, aug: Augmented, run: RunContext, key: str) -> SampleMeta:
    item = window.item
    geometry = window.geometry or {}
    known = window.camera_c2w is not None
    caption = caption_of(window)
    truth = None if window.truth is None else truth_meta(window.truth)
    return SampleMeta(
        key=key, clip_id=item.clip_id, window=window.index, parent_key=window.parent_key,
        parent_run=window.parent_run,
        source=SourceInfo(kind=item.source, uri=item.uri,  # type: ignore[arg-type]
                          provenance={k: v for k, v in item.provenance.items() if k != "sha256"}),
        license=item.provenance.get("license"), attribution=_attribution(item.provenance),
        source_span_s=window.span_s, tags=window.tags, event_group=_event_group(window.tags),
        interruption=aug.kind, caption=caption.text, caption_source=caption.source, caption_note=caption.note,
        scores=window.scores, vlm=window.vlm,
        geometry=GeometryMeta(
            known=known, backend=geometry.get("backend", "none") if known else "none",
            has_depth=window.depth is not None,
            translation_centre=geometry.get("translation_centre"), translation_scale=geometry.get("translation_scale"),
            quality={k: float(v) for k, v in (geometry.get("quality") or {}).items()},
            reason=None if known else geometry.get("reason"),
            excluded_interruptions=list(geometry.get("excluded_interruptions") or [])),
        augment={"kind": aug.kind.value, "fallback_from": aug.fallback_from, **aug.params}, truth=truth,
        config_hash=run.clip_hash, run_id=run.run_id, **meta_fields(window))


def manifest_row(run: RunContext, window_or_none: Window | None, clip: Clip, status: str, reason: str | None = None,
                 error: str | None = None, key: str | None = None, outcome: Outcome | None = None,
                 seconds: float = 0.0) -> ManifestRow:
    item = clip.item
    w = window_or_none
    tags = list(w.tags) if w else (outcome.tags if outcome else [])
    scores = dict(w.scores) if w else (outcome.scores if outcome else {})
    span = w.span_s if w else (outcome.span_s if outcome else None)
    aug = w.augmented if w else None
    vlm = (w.vlm if w else (outcome.vlm if outcome else None)) or {}
    parent_key = w.parent_key if w else (outcome.parent_key if outcome else None)
    return ManifestRow(
        run_id=run.run_id, clip_id=item.clip_id, window=w.index if w else (outcome.window if outcome else None),
        source=item.source, uri=item.uri, status=status, reason=reason, error=error, key=key,  # type: ignore[arg-type]
        parent_key=parent_key, event_type=tags[0] if tags else None, event_group=_event_group(tags), tags=tags,
        interruption=aug.kind.value if aug else None, scores={k: float(v) for k, v in scores.items()},
        source_start_s=span[0] if span else None, source_end_s=span[1] if span else None,
        geometry_backend=(w.geometry or {}).get("backend") if w else None,
        vlm_decision=vlm.get("decision"), vlm_reason=vlm.get("reason"),
        caption=(caption_of(w).text or None) if w else None,
        config_hash=run.clip_hash, seconds=round(seconds, 4), **manifest_fields(item, w))
