"""The five dynamic events of the synthetic source, by family: the event type each one is labelled with, the state
variable it changes, and the class that draws it (``synthetic_objects``, ``synthetic_light``; the contract in
``synthetic_event_base``)."""
from __future__ import annotations

import numpy as np

from tasks.sources.synthetic_event_base import Event
from tasks.sources.synthetic_light import LightEvent
from tasks.sources.synthetic_objects import FillEvent, GrowEvent, RotateEvent, TranslateEvent
from tasks.sources.synthetic_scene import Stage

EVENT_TYPES: dict[str, str] = {
    "fill": "container_filling", "translate": "ball_rolling", "rotate": "fan_rotation",
    "grow": "balloon_inflating", "light": "lamp_dimming"}
STATE_VARIABLES: dict[str, str] = {
    "fill": "liquid level", "translate": "position along the shelf", "rotate": "rotation phase",
    "grow": "balloon radius", "light": "light level"}
EVENTS: dict[str, type[Event]] = {
    "fill": FillEvent, "translate": TranslateEvent, "rotate": RotateEvent, "grow": GrowEvent, "light": LightEvent}


def make_event(family: str, rng: np.random.Generator, stage: Stage) -> Event:
    """Sample one event of the family, placed on the stage."""
    if family not in EVENTS:
        raise ValueError(f"unknown synthetic family {family!r}")
    return EVENTS[family](rng, stage)
