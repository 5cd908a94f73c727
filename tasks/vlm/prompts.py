"""Versioned judge prompts (ReMind Appendix F.1 questions, Appendix D reviewer style) and the constrained retry.

``config.prompt_version`` selects a template from ``PROMPTS``; the version is recorded with every judgement, so a
changed wording needs a new version key.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

from taxonomy import GROUP_CAPTION_GUIDE

PROMPT_VERSION = "judge-v2"


class _Entry(Protocol):
    id: str
    name: str
    group: str


class TaxonomyLike(Protocol):
    """The part of ``taxonomy.Taxonomy`` the judge uses."""

    def ids(self) -> list[str]: ...

    def by_id(self, id: str) -> _Entry: ...


@dataclass(frozen=True)
class EventCatalog:
    """The allowed event ids with short names and groups: small and picklable, so it travels cheaply to Ray actors."""

    entries: tuple[tuple[str, str, str], ...]  # (id, short name, group), in taxonomy order
    group_guides: tuple[tuple[str, str], ...] = ()  # (group, what its captions must describe)

    def ids(self) -> list[str]:
        return [entry[0] for entry in self.entries]

    def listing(self) -> str:
        """Ids grouped by tag group, each group headed by its caption focus (Table 7)."""
        guides = dict(self.group_guides)
        lines: list[str] = []
        for group in dict.fromkeys(entry[2] for entry in self.entries):
            guide = f" (caption: {guides[group]})" if group in guides else ""
            lines.append(f"[{group or 'other'}]{guide}")
            lines.extend(f"- {i}: {name}" for i, name, g in self.entries if g == group)
        return "\n".join(lines)


def as_catalog(taxonomy: TaxonomyLike | EventCatalog) -> EventCatalog:
    """The compact catalog of a taxonomy (a catalog is returned unchanged)."""
    if isinstance(taxonomy, EventCatalog):
        return taxonomy
    entries = []
    for event_id in taxonomy.ids():
        entry = taxonomy.by_id(event_id)
        entries.append((event_id, str(entry.name), str(getattr(entry, "group", ""))))
    groups = dict.fromkeys(e[2] for e in entries)
    return EventCatalog(tuple(entries), tuple((g, GROUP_CAPTION_GUIDE[g]) for g in groups if g in GROUP_CAPTION_GUIDE))


@dataclass(frozen=True)
class ChatTurn:
    """One chat message. The clip's frames are attached to the first user turn by the backend."""

    role: Literal["system", "user", "assistant"]
    text: str


@dataclass(frozen=True)
class PromptTemplate:
    version: str
    system: str
    user: str  # str.format fields: num_frames, duration_s, event_list
    retry: str  # str.format field: error

    def build(self, catalog: EventCatalog, num_frames: int, duration_s: float) -> list[ChatTurn]:
        """The first-attempt conversation for one clip."""
        user = self.user.format(num_frames=num_frames, duration_s=f"{duration_s:.2f}", event_list=catalog.listing())
        return [ChatTurn("system", self.system), ChatTurn("user", user)]

    def build_retry(self, first: list[ChatTurn], previous_answer: str, error: str) -> list[ChatTurn]:
        """The first conversation, the invalid answer, then the constrained correction request."""
        # Junk answers can be long; the model only needs to see roughly what it said.
        shown = previous_answer[:2000]
        return [*first, ChatTurn("assistant", shown), ChatTurn("user", self.retry.format(error=error))]


# The six questions both versions ask; a version's wording is fixed once released (it is recorded per judgement).
_QUESTIONS = (
    "Judge the clip:\n"
    "1. scene_cut: true if the clip contains a scene cut, montage or editing transition, else false.\n"
    "2. event_type: the id of the single dominant dynamic event from the list below, or null if nothing "
    "visibly changes (static scenery, only camera motion).\n"
    "3. spatial_occupancy: fraction of the image area (0 to 1) covered by the region that changes.\n"
    "4. temporal_occupancy: fraction of the clip's duration (0 to 1) during which the event is visible.\n"
    "5. confidence: your confidence (0 to 1) that event_type is right.\n"
    "6. caption: one sentence naming the object, the state variable that changes and the direction of the "
    "change (for example: \"Water level in a clear glass rises as it is filled from a kettle.\"). "
    "Empty string if event_type is null.\n")
_ANSWER = (
    "Allowed event_type ids (id: name), by group with what the caption should stress:\n{event_list}\n"
    "Answer with only this JSON object, no other text:\n"
    "{{\"scene_cut\": false, \"event_type\": \"<id or null>\", \"spatial_occupancy\": 0.0, "
    "\"temporal_occupancy\": 0.0, \"confidence\": 0.0, \"caption\": \"<sentence>\"")

_JUDGE_V1 = PromptTemplate(
    version="judge-v1",
    system=(
        "You are an expert video reviewer curating training clips for a video world model that must remember how "
        "scenes evolve. You judge short clips precisely and answer only with JSON."),
    user=("The {num_frames} images are frames sampled evenly, in order, from one {duration_s}-second clip.\n"
          + _QUESTIONS + _ANSWER + "}}"),
    retry=(
        "Your previous answer was not valid JSON matching the schema: {error}. "
        "Answer with only the JSON object."),
)

# judge-v2: the frames arrive as one video (both backends); multi-label types; same keep rule as v1.
_JUDGE_V2 = PromptTemplate(
    version="judge-v2",
    system=_JUDGE_V1.system,
    user=("The video shows {num_frames} frames sampled evenly, in order, from one {duration_s}-second clip.\n"
          + _QUESTIONS
          + "7. also_event_types: ids from OTHER groups that the same event also is (for example a hand pouring "
          "water is also an interaction), at most 3; [] if none.\n"
          + _ANSWER + ", \"also_event_types\": []}}"),
    retry=_JUDGE_V1.retry,
)

PROMPTS: dict[str, PromptTemplate] = {t.version: t for t in (_JUDGE_V1, _JUDGE_V2)}


def get_prompt(version: str) -> PromptTemplate:
    """The template registered under ``version``; unknown versions are an error, never a silent default."""
    try:
        return PROMPTS[version]
    except KeyError:
        raise KeyError(f"unknown VLM prompt_version {version!r}; known: {sorted(PROMPTS)}") from None
