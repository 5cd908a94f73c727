"""The ReMind dynamic-event taxonomy: 100+ event types in the seven tag groups of Table 7.

It drives stock-video retrieval (keywords, negative filters) and caption guidance (object, state variable,
direction); see ``taxonomy/events.yaml`` for the data and :mod:`taxonomy.model` for the importance formula.
"""
from __future__ import annotations

from taxonomy.loader import DEFAULT_PATH, format_taxonomy_table, load_taxonomy, parse_taxonomy
from taxonomy.model import (
    GROUP_CANDIDATES,
    GROUP_CAPTION_GUIDE,
    GROUPS,
    IMPORTANCE_WEIGHTS,
    CaptionCues,
    EventType,
    Taxonomy,
)

__all__ = [
    "DEFAULT_PATH",
    "GROUPS",
    "GROUP_CANDIDATES",
    "GROUP_CAPTION_GUIDE",
    "IMPORTANCE_WEIGHTS",
    "CaptionCues",
    "EventType",
    "Taxonomy",
    "format_taxonomy_table",
    "load_taxonomy",
    "parse_taxonomy",
]
