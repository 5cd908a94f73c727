"""Turn a raw VLM answer into a validated ``VLMVerdict``, or a short error message fit for the retry prompt.

Tolerated: prose around the object, ```json fences, <think> blocks, trailing commas, "none"/"null" strings for no
event, a case-only mismatch of an event id. Everything else (missing or extra fields, strings for numbers,
percentages, single quotes) is an error: the judge asks once for a correction rather than guessing.
"""
from __future__ import annotations

import json
import re
from collections.abc import Collection
from typing import Any, Literal

from pydantic import ValidationError

from schemas.vlm import MAX_EXTRA_EVENT_TYPES, VERDICT_FIELDS, VLMVerdict

_THINK = re.compile(r"<think>.*?</think>", re.DOTALL | re.IGNORECASE)
_FENCE = re.compile(r"```(?:json|JSON)?\s*(.*?)```", re.DOTALL)
_TRAILING_COMMA = re.compile(r",(\s*[}\]])")
_NO_EVENT = {"", "none", "null", "no_event", "n/a"}


class ParseError(ValueError):
    """Why an answer was not accepted as a verdict. ``kind`` maps to the judgement's reject reason."""

    def __init__(self, message: str, kind: Literal["unparseable", "unknown_event_type"] = "unparseable",
                 verdict: VLMVerdict | None = None) -> None:
        super().__init__(message)
        self.kind = kind
        self.verdict = verdict  # set for unknown_event_type: the answer was otherwise valid


def _decode_first_object(text: str) -> dict[str, Any] | None:
    decoder = json.JSONDecoder()
    for match in re.finditer(r"\{", text):
        try:
            value, _ = decoder.raw_decode(text, match.start())
        except json.JSONDecodeError:
            continue
        if isinstance(value, dict):
            return value
    return None


def extract_json_object(raw: str) -> dict[str, Any]:
    """The first JSON object in ``raw`` (fenced block preferred). Raises ``ParseError``."""
    text = _THINK.sub("", raw).strip()
    if not text:
        raise ParseError("empty answer")
    candidates = [m.group(1) for m in _FENCE.finditer(text)] + [text]
    for candidate in candidates:
        for variant in (candidate, _TRAILING_COMMA.sub(r"\1", candidate)):
            found = _decode_first_object(variant)
            if found is not None:
                return found
    raise ParseError("no JSON object found")


def _format_validation(error: ValidationError) -> str:
    parts = []
    for item in error.errors()[:4]:
        where = ".".join(str(p) for p in item["loc"]) or "object"
        if item["type"] == "missing":
            parts.append(f"missing field {where}")
        elif item["type"] == "extra_forbidden":
            parts.append(f"unexpected field {where}")
        else:
            parts.append(f"{where}: {item['msg']} (got {item.get('input')!r:.40})")
    return "; ".join(parts)


def resolve_event_type(event_type: str | None, known_ids: Collection[str]) -> str | None:
    """Canonical id for a (possibly case-mismatched) event id; None for no event. Raises KeyError when unknown."""
    if event_type is None or event_type.strip().lower() in _NO_EVENT:
        return None
    value = event_type.strip()
    if value in known_ids:
        return value
    folded = {k.lower(): k for k in known_ids}
    if value.lower() in folded:
        return folded[value.lower()]
    raise KeyError(value)


def parse_verdict(raw: str, known_ids: Collection[str] | None = None) -> VLMVerdict:
    """Validated verdict from a raw answer. With ``known_ids``, an id outside them raises kind unknown_event_type."""
    data = extract_json_object(raw)
    try:
        verdict = VLMVerdict.model_validate(data)
    except ValidationError as exc:
        expected = ", ".join(VERDICT_FIELDS)
        raise ParseError(f"{_format_validation(exc)}; expected exactly the fields {expected}") from None
    if known_ids is None:
        return verdict
    try:
        event_type = resolve_event_type(verdict.event_type, known_ids)
    except KeyError:
        raise ParseError(f"event_type {verdict.event_type!r} is not one of the allowed ids",
                         kind="unknown_event_type", verdict=verdict) from None
    caption = verdict.caption.strip()
    also = _resolve_extra_types(verdict.also_event_types, event_type, known_ids)
    if event_type != verdict.event_type or caption != verdict.caption or also != verdict.also_event_types:
        verdict = verdict.model_copy(update={"event_type": event_type, "caption": caption, "also_event_types": also})
    return verdict


def _resolve_extra_types(values: list[str], primary: str | None, known_ids: Collection[str]) -> list[str]:
    """Canonical, distinct extra ids; the primary and ids outside the taxonomy are dropped (they add no tag)."""
    out: list[str] = []
    for value in values:
        try:
            resolved = resolve_event_type(value, known_ids)
        except KeyError:
            continue
        if resolved is not None and resolved != primary and resolved not in out:
            out.append(resolved)
    return out


def verdict_json_schema(known_ids: Collection[str]) -> dict[str, Any]:
    """The verdict's JSON Schema with event ids as enums: what a server's structured output is held to."""
    ids = sorted(known_ids)
    unit = {"type": "number", "minimum": 0.0, "maximum": 1.0}
    return {
        "type": "object", "additionalProperties": False, "required": list(VERDICT_FIELDS),
        "properties": {
            "scene_cut": {"type": "boolean"},
            "event_type": {"anyOf": [{"type": "string", "enum": ids}, {"type": "null"}]},
            "spatial_occupancy": unit, "temporal_occupancy": unit, "confidence": unit,
            "caption": {"type": "string", "maxLength": 1000},
            "also_event_types": {"type": "array", "items": {"type": "string", "enum": ids},
                                 "maxItems": MAX_EXTRA_EVENT_TYPES},
        }}
