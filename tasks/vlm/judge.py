"""The VLM filtering stage (ReMind Appendix F.1): judge windows, decide, caption and tag the kept ones.

Every window ends with exactly one judgement; one bad window (junk answer, server error) never stops the others.
Calls go in two rounds so both fill whole batches: first attempts for all windows, then one constrained retry
for the windows whose answer did not parse.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from schemas.config import VLMConfig
from schemas.constants import FPS
from schemas.vlm import EventTypes, VLMJudgement, VLMVerdict
from tasks.records import Window
from tasks.vlm.backends import VLMBackend, VLMCallError, VLMRequest, subsample_frames
from tasks.vlm.decide import decide
from tasks.vlm.parse import ParseError, parse_verdict, verdict_json_schema
from tasks.vlm.prompts import ChatTurn, EventCatalog, TaxonomyLike, as_catalog, get_prompt

log = logging.getLogger(__name__)


@dataclass
class ClipInput:
    """What the judge needs of a window: its subsampled frames. Small enough to ship to a Ray actor."""

    clip_id: str
    frames: np.ndarray  # (config.num_frames,H,W,3) uint8 RGB
    duration_s: float  # real time spanned by the window


def clip_input(window: Window, num_frames: int) -> ClipInput:
    """The window's frames subsampled evenly to ``num_frames`` (first and last frame included)."""
    return ClipInput(window.window_id, subsample_frames(window.frames, num_frames), len(window.frames) / FPS)


def event_types(query: str | None, verdict: VLMVerdict, config: VLMConfig) -> EventTypes:
    """The query's type beside the VLM's; the VLM's becomes primary when it is confident (or there is no query)."""
    vlm_wins = verdict.event_type is not None and (query is None or verdict.confidence >= config.type_confidence)
    primary = verdict.event_type if vlm_wins else query
    return EventTypes(query=query, vlm=verdict.event_type, vlm_confidence=verdict.confidence,
                      agree=None if query is None else query == verdict.event_type, primary=primary,
                      primary_from="vlm" if vlm_wins else ("query" if query is not None else "none"))


def multi_label_tags(types: EventTypes, verdict: VLMVerdict, catalog: EventCatalog) -> list[str]:
    """tags[0] is the primary type; then the types of OTHER groups the VLM says the same event also is."""
    if types.primary is None:
        return []
    groups = {entry[0]: entry[2] for entry in catalog.entries}
    tags, seen_groups = [types.primary], {groups.get(types.primary)}
    for extra in verdict.also_event_types:
        if extra in groups and groups[extra] not in seen_groups:
            tags.append(extra)
            seen_groups.add(groups[extra])
    return tags


def apply_judgement(window: Window, judgement: VLMJudgement, config: VLMConfig | None = None,
                    catalog: EventCatalog | None = None) -> VLMJudgement:
    """Record the judgement on the window, with the query-vs-VLM types. An accepted verdict sets the caption (the
    VLM's) and the tags (primary type first, multi-label across groups). Returns the judgement as recorded."""
    config = config or VLMConfig()
    query = window.tags[0] if window.tags else None  # the retrieval query's type (or the synthetic ground truth)
    if judgement.verdict is not None:
        types = event_types(query, judgement.verdict, config)
        judgement = judgement.model_copy(update={"event_types": types})
        if judgement.accepted:
            window.tags = multi_label_tags(types, judgement.verdict, catalog) if catalog else \
                [t for t in (types.primary,) if t]
            if judgement.verdict.caption:
                window.caption = judgement.verdict.caption
    window.vlm = judgement.model_dump(mode="json")
    return judgement


def _call(backend: VLMBackend, requests: list[VLMRequest], batch_size: int) -> list[str | VLMCallError]:
    """Generate in batches; a batch that raises is retried one request at a time to isolate the bad one."""
    out: list[str | VLMCallError] = []
    for start in range(0, len(requests), batch_size):
        batch = requests[start:start + batch_size]
        try:
            results = backend.generate(batch)
            if len(results) != len(batch):
                raise RuntimeError(f"backend returned {len(results)} answers for {len(batch)} requests")
            out.extend(results)
        except Exception as exc:  # noqa: BLE001 - any backend failure becomes a per-window "failed"
            if len(batch) == 1:
                out.append(VLMCallError(f"{backend.name} VLM {backend.model!r}: {type(exc).__name__}: {exc}"[:300]))
            else:
                log.warning("VLM batch of %d failed (%s); retrying one by one", len(batch), exc)
                out.extend(_call(backend, batch, 1))
    return out


@dataclass
class _Pending:
    clip: ClipInput
    turns: list[ChatTurn]
    attempts: int = 0
    raw: str = ""
    error: ParseError | None = None
    verdict: VLMVerdict | None = None
    failure: str | None = None


def judge_clips(clips: list[ClipInput], backend: VLMBackend, config: VLMConfig,
                taxonomy: TaxonomyLike | EventCatalog) -> list[VLMJudgement]:
    """One judgement per clip, in order. Never raises for a single clip's failure."""
    template = get_prompt(config.prompt_version)
    catalog = as_catalog(taxonomy)
    known = set(catalog.ids())
    schema = verdict_json_schema(known)
    pending = [_Pending(c, template.build(catalog, len(c.frames), c.duration_s)) for c in clips]

    def run(items: list[_Pending]) -> None:
        requests = [VLMRequest(p.clip.frames, p.turns, p.clip.duration_s, p.clip.clip_id, schema) for p in items]
        for item, answer in zip(items, _call(backend, requests, config.batch_size)):
            item.attempts += 1
            if isinstance(answer, VLMCallError):
                item.failure = str(answer)
                continue
            item.raw = answer
            try:
                item.verdict, item.error = parse_verdict(answer, known), None
            except ParseError as exc:
                item.verdict, item.error = exc.verdict, exc

    run(pending)
    retry = [p for p in pending if p.failure is None and p.error is not None]
    for p in retry:
        p.turns = template.build_retry(p.turns, p.raw, str(p.error))
    run(retry)
    return [_judgement(p, backend, template.version, config, known) for p in pending]


def _judgement(p: _Pending, backend: VLMBackend, prompt_version: str, config: VLMConfig,
               known: set[str]) -> VLMJudgement:
    common = dict(backend=backend.name, model=backend.model, prompt_version=prompt_version,
                  attempts=p.attempts, raw_excerpt=p.raw[:200])
    if p.failure is not None:
        return VLMJudgement(decision="failed", reason=f"vlm_error: {p.failure}", verdict=p.verdict, **common)
    if p.error is not None and p.error.kind == "unparseable":
        return VLMJudgement(decision="rejected", reason="vlm_unparseable", **common)
    assert p.verdict is not None  # parsed, or valid apart from an unknown event id (decide rejects that)
    decision, reason = decide(p.verdict, config, known)
    return VLMJudgement(decision=decision, reason=reason, verdict=p.verdict, **common)


def judge_windows(windows: list[Window], backend: VLMBackend, config: VLMConfig,
                  taxonomy: TaxonomyLike | EventCatalog) -> list[VLMJudgement]:
    """Judge windows in process: subsample, prompt, generate in batches, parse, decide; fills ``window.vlm``,
    and for accepted windows ``window.caption`` and ``window.tags``."""
    catalog = as_catalog(taxonomy)
    judgements = judge_clips([clip_input(w, config.num_frames) for w in windows], backend, config, catalog)
    return record_judgements(windows, judgements, config, catalog)


def record_judgements(windows: list[Window], judgements: list[VLMJudgement], config: VLMConfig,
                      catalog: EventCatalog) -> list[VLMJudgement]:
    """Apply each judgement to its window (types, tags, caption) and log it; returns them as recorded."""
    recorded = []
    for window, judgement in zip(windows, judgements):
        judgement = apply_judgement(window, judgement, config, catalog)
        recorded.append(judgement)
        log.info("vlm %s: %s%s", window.window_id, judgement.decision,
                 f" ({judgement.reason})" if judgement.reason else "")
    return recorded
