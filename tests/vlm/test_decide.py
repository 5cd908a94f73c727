"""The keep rule and the judgement record's invariants."""
from __future__ import annotations

import pytest
from pydantic import ValidationError

from schemas.config import VLMConfig
from schemas.vlm import REJECT_REASONS, VLMJudgement, VLMVerdict
from tasks.vlm.decide import decide

KNOWN = {"pouring_filling", "person_walking"}
CONFIG = VLMConfig(min_confidence=0.5, min_spatial_occupancy=0.1, min_temporal_occupancy=0.6)


def verdict(**overrides: object) -> VLMVerdict:
    data: dict[str, object] = {"scene_cut": False, "event_type": "pouring_filling", "spatial_occupancy": 0.4,
                               "temporal_occupancy": 0.8, "confidence": 0.9, "caption": "Water level rises."}
    data.update(overrides)
    return VLMVerdict.model_validate(data)


@pytest.mark.parametrize("overrides, reason", [
    ({"scene_cut": True}, "vlm_scene_cut"),
    ({"event_type": None}, "vlm_no_event"),
    ({"event_type": "alien_invasion"}, "vlm_unknown_event_type"),
    ({"spatial_occupancy": 0.05}, "vlm_low_spatial_occupancy"),
    ({"temporal_occupancy": 0.3}, "vlm_low_temporal_occupancy"),
    ({"confidence": 0.2}, "vlm_low_confidence"),
])
def test_every_reject_reason(overrides: dict[str, object], reason: str) -> None:
    assert decide(verdict(**overrides), CONFIG, KNOWN) == ("rejected", reason)
    assert reason in REJECT_REASONS


def test_accepts_sustained_high_occupancy_known_event() -> None:
    assert decide(verdict(), CONFIG, KNOWN) == ("accepted", None)


def test_thresholds_are_inclusive() -> None:
    at = verdict(spatial_occupancy=0.1, temporal_occupancy=0.6, confidence=0.5)
    assert decide(at, CONFIG, KNOWN) == ("accepted", None)


def test_scene_cut_is_reported_before_other_failures() -> None:
    assert decide(verdict(scene_cut=True, confidence=0.0), CONFIG, KNOWN)[1] == "vlm_scene_cut"


def test_thresholds_come_from_config() -> None:
    strict = CONFIG.model_copy(update={"min_confidence": 0.95})
    assert decide(verdict(), strict, KNOWN) == ("rejected", "vlm_low_confidence")


def test_judgement_invariants() -> None:
    common = dict(backend="openai", model="m", prompt_version="judge-v1", attempts=1)
    with pytest.raises(ValidationError):
        VLMJudgement(decision="accepted", verdict=None, **common)
    with pytest.raises(ValidationError):
        VLMJudgement(decision="rejected", reason=None, **common)
    with pytest.raises(ValidationError):
        VLMJudgement(decision="failed", reason="vlm_unparseable", **common)
    ok = VLMJudgement(decision="accepted", verdict=verdict(), **common)
    assert VLMJudgement.model_validate_json(ok.model_dump_json()) == ok
