"""Parsing scripted VLM answers: strict schema, robust extraction."""
from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from schemas.vlm import VLMVerdict
from tasks.vlm.parse import ParseError, extract_json_object, parse_verdict
from tasks.vlm.prompts import EventCatalog


def test_valid_answer_parses(verdict_json: Callable[..., str], catalog: EventCatalog, event_id: str) -> None:
    verdict = parse_verdict(verdict_json(), catalog.ids())
    assert verdict == VLMVerdict(scene_cut=False, event_type=event_id, spatial_occupancy=0.5,
                                 temporal_occupancy=0.9, confidence=0.8,
                                 caption="A person walks left to right across the frame.")


@pytest.mark.parametrize("wrap", [
    "Here is my judgement:\n{} \nHope this helps.",
    "```json\n{}\n```",
    "```\n{}\n```",
    "<think>the clip shows {{\"not\": \"this\"}}</think>{}",
    "Sure! {}",
])
def test_prose_fences_and_think_blocks_are_tolerated(wrap: str, verdict_json: Callable[..., str],
                                                    catalog: EventCatalog) -> None:
    verdict = parse_verdict(wrap.format(verdict_json()), catalog.ids())
    assert verdict.confidence == 0.8


def test_trailing_comma_is_tolerated(verdict_json: Callable[..., str], catalog: EventCatalog) -> None:
    assert parse_verdict(verdict_json()[:-1] + ",}", catalog.ids()).spatial_occupancy == 0.5


def test_first_object_wins_over_later_prose_objects(verdict_json: Callable[..., str]) -> None:
    assert extract_json_object(verdict_json() + ' and also {"x": 1}')["scene_cut"] is False


@pytest.mark.parametrize("raw, fragment", [
    ("", "empty answer"),
    ("I cannot judge this clip.", "no JSON object"),
    ("{'scene_cut': False}", "no JSON object"),  # Python literal, not JSON
    ("[1, 2, 3]", "no JSON object"),
])
def test_no_json_object(raw: str, fragment: str) -> None:
    with pytest.raises(ParseError, match=fragment) as info:
        parse_verdict(raw)
    assert info.value.kind == "unparseable"


def test_missing_field_is_named(verdict_json: Callable[..., str]) -> None:
    data = json.loads(verdict_json())
    del data["temporal_occupancy"]
    with pytest.raises(ParseError, match="missing field temporal_occupancy"):
        parse_verdict(json.dumps(data))


@pytest.mark.parametrize("field, value, fragment", [
    ("spatial_occupancy", "0.5", "spatial_occupancy"),  # strings are not numbers
    ("scene_cut", "no", "scene_cut"),
    ("scene_cut", 0, "scene_cut"),
    ("confidence", 80, "confidence"),  # a percentage, out of [0,1]
    ("temporal_occupancy", -0.1, "temporal_occupancy"),
    ("caption", None, "caption"),
    ("event_type", 3, "event_type"),
])
def test_wrong_types_and_ranges_are_errors(verdict_json: Callable[..., str], field: str, value: object,
                                           fragment: str) -> None:
    with pytest.raises(ParseError, match=fragment) as info:
        parse_verdict(verdict_json(**{field: value}))
    assert info.value.kind == "unparseable"


def test_extra_field_is_an_error(verdict_json: Callable[..., str]) -> None:
    with pytest.raises(ParseError, match="unexpected field reasoning"):
        parse_verdict(verdict_json(reasoning="because"))


def test_unknown_event_id_is_a_distinct_error(verdict_json: Callable[..., str], catalog: EventCatalog) -> None:
    with pytest.raises(ParseError, match="not one of the allowed ids") as info:
        parse_verdict(verdict_json(event_type="alien_invasion"), catalog.ids())
    assert info.value.kind == "unknown_event_type"
    assert info.value.verdict is not None and info.value.verdict.event_type == "alien_invasion"


@pytest.mark.parametrize("value", [None, "null", "None", "", " none "])
def test_no_event_spellings_become_none(verdict_json: Callable[..., str], catalog: EventCatalog,
                                        value: str | None) -> None:
    assert parse_verdict(verdict_json(event_type=value), catalog.ids()).event_type is None


def test_event_id_case_is_canonicalised(verdict_json: Callable[..., str], catalog: EventCatalog,
                                        event_id: str) -> None:
    verdict = parse_verdict(verdict_json(event_type=event_id.upper(), caption="  padded  "), catalog.ids())
    assert verdict.event_type == event_id and verdict.caption == "padded"


def test_without_known_ids_any_event_string_is_kept(verdict_json: Callable[..., str]) -> None:
    assert parse_verdict(verdict_json(event_type="anything")).event_type == "anything"
