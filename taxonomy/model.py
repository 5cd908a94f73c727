"""Pydantic models of the dynamic-event taxonomy (ReMind Sec. 3.1, Appendix F.1, Table 7).

Every event type carries three scores in [0, 1] (F.1): ``salience`` (is the state change visually salient),
``frequency`` (is it common enough to collect at scale) and ``recovery`` (is it useful for hidden-state recovery
after an interruption). Its importance is derived, never stored::

    importance = round(0.4 * recovery + 0.35 * salience + 0.25 * frequency, 4)

Recovery weighs most because the taxonomy exists to teach dynamic memory; frequency weighs least because rare
but useful dynamics can be synthesised (Sec. 3.1).
"""
from __future__ import annotations

import difflib
import re
from functools import lru_cache
from typing import Annotated, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator, model_validator

Group = Literal[
    "translational",
    "monotonic_state",
    "deformation",
    "lighting_weather",
    "interaction",
    "periodic",
    "discrete",
]
GROUPS: tuple[str, ...] = get_args(Group)
"""The seven tag groups of Table 7, in the table's order (also the sort order of listings)."""

GROUP_CANDIDATES: dict[str, int] = {
    "translational": 39205,
    "monotonic_state": 20076,
    "deformation": 13793,
    "lighting_weather": 11745,
    "interaction": 10218,
    "periodic": 3210,
    "discrete": 1147,
}
"""Candidate clip counts per group from Table 7 (tags are not mutually exclusive)."""

GROUP_CAPTION_GUIDE: dict[str, str] = {
    "translational": "moving object, direction, and speed",
    "monotonic_state": "state variable and monotonic change",
    "deformation": "shape change and actor/object",
    "lighting_weather": "illumination or weather transition",
    "interaction": "actor-object interaction and outcome",
    "periodic": "periodic source and phase",
    "discrete": "trigger, before-state, and after-state",
}
"""What a caption must describe for each group (Table 7, last column)."""

IMPORTANCE_WEIGHTS: dict[str, float] = {"recovery": 0.4, "salience": 0.35, "frequency": 0.25}

_ID_PATTERN = r"^[a-z][a-z0-9_]*$"
Score = Annotated[float, Field(ge=0.0, le=1.0)]


def _clean_phrases(values: list[str], what: str) -> list[str]:
    """Strip and lowercase phrases; reject blanks and duplicates."""
    out: list[str] = []
    for value in values:
        phrase = " ".join(value.split()).lower()
        if not phrase:
            raise ValueError(f"{what} contains an empty phrase")
        if phrase in out:
            raise ValueError(f"{what} repeats {phrase!r}")
        out.append(phrase)
    return out


@lru_cache(maxsize=4096)
def _phrase_pattern(phrase: str) -> re.Pattern[str]:
    """Whole-word, case-insensitive pattern for one filter phrase.

    Spaces in the phrase also match '-' and '_' so that "slow motion" hits URL slugs like "slow-motion"; a
    trailing plural "s" is tolerated ("animation" hits "animations"). Word boundaries are alphanumeric-only
    because ``\\b`` treats '_' as a word character and would miss "text_overlay".
    """
    body = r"[\s_\-]+".join(re.escape(word) for word in phrase.split())
    return re.compile(rf"(?<![a-z0-9]){body}s?(?![a-z0-9])", re.IGNORECASE)


def find_phrase(phrases: list[str], text: str) -> str | None:
    """The first of ``phrases`` occurring in ``text`` as whole words, else None."""
    for phrase in phrases:
        if _phrase_pattern(phrase).search(text):
            return phrase
    return None


class CaptionCues(BaseModel):
    """Caption guidance (F.1): captions must name the object, the state variable and its direction of change."""

    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)

    object: str = Field(min_length=1)
    state_variable: str = Field(min_length=1)
    direction: str = Field(min_length=1)


class EventType(BaseModel):
    """One dynamic-event type: retrieval keywords, negative filters, caption cues and priority scores.

    ``importance`` is derived: ``round(0.4*recovery + 0.35*salience + 0.25*frequency, 4)``.
    ``allowed_default_filters`` exempts this type from some global default filters (e.g. "text" for page flips).
    """

    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)

    id: str = Field(pattern=_ID_PATTERN)
    group: Group
    name: str = Field(min_length=1)
    description: str = Field(min_length=1)
    keywords: list[str] = Field(min_length=3, max_length=6)
    negative_filters: list[str] = Field(default_factory=list)
    allowed_default_filters: list[str] = Field(default_factory=list)
    caption_cues: CaptionCues
    salience: Score
    frequency: Score
    recovery: Score

    @field_validator("keywords")
    @classmethod
    def _keywords(cls, value: list[str]) -> list[str]:
        return _clean_phrases(value, "keywords")

    @field_validator("negative_filters", "allowed_default_filters")
    @classmethod
    def _filters(cls, value: list[str]) -> list[str]:
        return _clean_phrases(value, "filters")

    @property
    def importance(self) -> float:
        """Derived priority score in [0, 1] (formula in the module docstring)."""
        w = IMPORTANCE_WEIGHTS
        return round(w["recovery"] * self.recovery + w["salience"] * self.salience + w["frequency"] * self.frequency, 4)

    def all_negative_filters(self, defaults: list[str]) -> list[str]:
        """This type's own filters, then the defaults it does not exempt, without repeats."""
        out = list(self.negative_filters)
        out += [d for d in defaults if d not in out and d not in self.allowed_default_filters]
        return out


class Taxonomy(BaseModel):
    """The full taxonomy: a version, global default negative filters and the event types."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    version: str = Field(min_length=1)
    default_negative_filters: list[str] = Field(default_factory=list)
    events: list[EventType] = Field(min_length=1)
    _index: dict[str, EventType] = PrivateAttr(default_factory=dict)

    @field_validator("default_negative_filters")
    @classmethod
    def _defaults(cls, value: list[str]) -> list[str]:
        return _clean_phrases(value, "default_negative_filters")

    @model_validator(mode="after")
    def _consistent(self) -> Taxonomy:
        seen: dict[str, int] = {}
        for i, event in enumerate(self.events):
            if event.id in seen:
                raise ValueError(f"duplicate event id {event.id!r} (events[{seen[event.id]}] and events[{i}])")
            seen[event.id] = i
            unknown = [f for f in event.allowed_default_filters if f not in self.default_negative_filters]
            if unknown:
                raise ValueError(
                    f"event {event.id!r}: field 'allowed_default_filters' names {unknown} "
                    "which are not in default_negative_filters"
                )
        present = {event.group for event in self.events}
        missing = [g for g in GROUPS if g not in present]
        if missing:
            raise ValueError(f"taxonomy has no events in group(s): {', '.join(missing)}")
        return self

    def model_post_init(self, __context: object) -> None:
        self._index = {event.id: event for event in self.events}

    def ids(self) -> list[str]:
        """All event ids in file order."""
        return [event.id for event in self.events]

    def by_id(self, event_id: str) -> EventType:
        """The event type with this id; KeyError naming close matches otherwise."""
        try:
            return self._index[event_id]
        except KeyError:
            close = difflib.get_close_matches(event_id, list(self._index), n=3, cutoff=0.6)
            hint = f"; did you mean: {', '.join(close)}?" if close else ""
            raise KeyError(f"unknown event type {event_id!r}{hint}") from None

    def in_group(self, group: str) -> list[EventType]:
        """Event types of one tag group, in file order; ValueError for an unknown group."""
        if group not in GROUPS:
            raise ValueError(f"unknown group {group!r}; expected one of {', '.join(GROUPS)}")
        return [event for event in self.events if event.group == group]

    def group_of(self, event_id: str) -> str:
        """The tag group of an event id."""
        return self.by_id(event_id).group

    def negative_filters_for(self, event_id: str) -> list[str]:
        """The effective negative filters of one type (its own, then the applicable defaults)."""
        return self.by_id(event_id).all_negative_filters(self.default_negative_filters)

    def matches_negative(self, event_id: str, text: str) -> str | None:
        """The first effective negative filter of ``event_id`` found in ``text`` (whole words, any case), else None.

        Filters are tried in :meth:`negative_filters_for` order, so a type's own filters win over defaults.
        """
        return find_phrase(self.negative_filters_for(event_id), text)
