"""What the VLM judge decides about a window (ReMind Appendix F.1): the parsed verdict and the recorded judgement.

``VLMVerdict`` is the model's answer after strict validation; ``VLMJudgement`` is what meta.json and the manifest
store: the verdict (if any), the decision taken from it and why.
"""
from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

VERDICT_FIELDS: tuple[str, ...] = (
    "scene_cut", "event_type", "spatial_occupancy", "temporal_occupancy", "confidence", "caption",
    "also_event_types")
MAX_EXTRA_EVENT_TYPES = 3

Decision = Literal["accepted", "rejected", "failed"]

# Reasons a judgement can carry besides "vlm_error: <msg>" (failed).
REJECT_REASONS: tuple[str, ...] = (
    "vlm_unparseable", "vlm_scene_cut", "vlm_no_event", "vlm_unknown_event_type",
    "vlm_low_spatial_occupancy", "vlm_low_temporal_occupancy", "vlm_low_confidence")


class VLMVerdict(BaseModel):
    """The VLM's answer for one clip, exactly these fields, strictly typed (no string-to-number coercion)."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    scene_cut: bool = Field(description="True if the clip contains a scene cut or montage transition.")
    event_type: str | None = Field(description="Taxonomy id of the dominant dynamic event, or null for none.")
    spatial_occupancy: float = Field(ge=0.0, le=1.0, description="Image-area fraction the dynamic region covers.")
    temporal_occupancy: float = Field(ge=0.0, le=1.0, description="Clip-time fraction the event is visible.")
    confidence: float = Field(ge=0.0, le=1.0, description="The model's confidence in event_type.")
    caption: str = Field(max_length=1000, description="Object, state variable and direction of change.")
    also_event_types: list[str] = Field(default_factory=list, max_length=MAX_EXTRA_EVENT_TYPES, description=(
        "Taxonomy ids of other groups the same event also belongs to (Table 7 counts are not exclusive)."))


class EventTypes(BaseModel):
    """The retrieval query's taxonomy type beside the VLM's, and which became the sample's primary tag."""

    model_config = ConfigDict(extra="forbid")

    query: str | None = Field(description="The type the source was retrieved for (or its ground truth), if any.")
    vlm: str | None = Field(description="The type the VLM named.")
    vlm_confidence: float = Field(ge=0.0, le=1.0)
    agree: bool | None = Field(description="query == vlm; null when there was no query type.")
    primary: str | None = Field(description="tags[0]: the VLM's type when confident (vlm.type_confidence), "
                                "else the query's.")
    primary_from: Literal["vlm", "query", "none"]


class VLMJudgement(BaseModel):
    """The recorded outcome of judging one window."""

    model_config = ConfigDict(extra="forbid")

    backend: str
    model: str
    prompt_version: str
    verdict: VLMVerdict | None = None
    decision: Decision
    reason: str | None = None
    attempts: int = Field(0, ge=0, description="Model calls made for this window (1, or 2 after a retry).")
    raw_excerpt: str = Field("", max_length=200, description="First 200 characters of the last raw answer.")
    event_types: EventTypes | None = Field(None, description="Query vs VLM type and their agreement.")

    @model_validator(mode="after")
    def _consistent(self) -> "VLMJudgement":
        if self.decision == "accepted" and (self.verdict is None or self.reason is not None):
            raise ValueError("an accepted judgement needs a verdict and no reason")
        if self.decision != "accepted" and not self.reason:
            raise ValueError(f"a {self.decision} judgement needs a reason")
        if self.decision == "failed" and not (self.reason or "").startswith("vlm_error: "):
            raise ValueError("a failed judgement's reason starts with 'vlm_error: '")
        return self

    @property
    def accepted(self) -> bool:
        return self.decision == "accepted"
