"""The keep rule of ReMind Appendix F.1: high-occupancy, temporally sustained, cut-free clips of a known event."""
from __future__ import annotations

from collections.abc import Collection
from typing import Literal

from schemas.config import VLMConfig
from schemas.vlm import VLMVerdict


def decide(verdict: VLMVerdict, config: VLMConfig,
           known_ids: Collection[str]) -> tuple[Literal["accepted", "rejected"], str | None]:
    """(decision, reason). Checks run in a fixed order, so the reason names the first rule a clip breaks."""
    if verdict.scene_cut:
        return "rejected", "vlm_scene_cut"
    if verdict.event_type is None:
        return "rejected", "vlm_no_event"
    if verdict.event_type not in known_ids:
        return "rejected", "vlm_unknown_event_type"
    if verdict.spatial_occupancy < config.min_spatial_occupancy:
        return "rejected", "vlm_low_spatial_occupancy"
    if verdict.temporal_occupancy < config.min_temporal_occupancy:
        return "rejected", "vlm_low_temporal_occupancy"
    if verdict.confidence < config.min_confidence:
        return "rejected", "vlm_low_confidence"
    return "accepted", None
