"""Prompt registry, content and the constrained retry."""
from __future__ import annotations

import pytest

from schemas.vlm import VERDICT_FIELDS
from tasks.vlm.prompts import PROMPT_VERSION, PROMPTS, EventCatalog, as_catalog, get_prompt
from taxonomy import GROUP_CAPTION_GUIDE, Taxonomy


def test_registry_selects_by_version() -> None:
    assert PROMPT_VERSION in PROMPTS and get_prompt(PROMPT_VERSION).version == PROMPT_VERSION
    with pytest.raises(KeyError, match="unknown VLM prompt_version 'judge-v0'"):
        get_prompt("judge-v0")


def test_prompt_lists_every_id_and_asks_for_the_exact_fields(taxonomy: Taxonomy, catalog: EventCatalog) -> None:
    system, user = get_prompt(PROMPT_VERSION).build(catalog, 8, 81 / 16)
    assert system.role == "system" and "expert video reviewer" in system.text
    assert user.role == "user" and "8 frames" in user.text and "5.06-second" in user.text
    for event_id in taxonomy.ids():
        assert f"- {event_id}: {taxonomy.by_id(event_id).name}\n" in user.text + "\n"
    for group, guide in GROUP_CAPTION_GUIDE.items():
        assert f"[{group}] (caption: {guide})" in user.text
    for field in VERDICT_FIELDS:
        assert f'"{field}"' in user.text
    assert "object" in user.text and "state variable" in user.text and "direction" in user.text


def test_retry_keeps_the_conversation_and_names_the_error(catalog: EventCatalog) -> None:
    template = get_prompt(PROMPT_VERSION)
    first = template.build(catalog, 4, 5.0)
    retry = template.build_retry(first, "x" * 5000, "missing field caption")
    assert retry[:2] == first and retry[2].role == "assistant" and len(retry[2].text) == 2000
    assert retry[3].text == ("Your previous answer was not valid JSON matching the schema: missing field caption. "
                             "Answer with only the JSON object.")


def test_catalog_is_compact_and_idempotent(taxonomy: Taxonomy, catalog: EventCatalog) -> None:
    assert catalog.ids() == taxonomy.ids()
    assert as_catalog(catalog) is catalog
