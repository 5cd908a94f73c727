"""Light toggles only where a light can go off: the measured cue on labelled real indoor and outdoor clips.

``setting`` in tests/data/real/labels.yaml is a person's label from frames. Montages are left out: their windows
never reach augmentation (the scene-cut stage turns them down).
"""
from __future__ import annotations

import numpy as np
import pytest

from benchmarks.prefilter import LABELS, load_labels
from schemas.config_augment import AugmentConfig
from schemas.graph import InterruptionKind
from tasks.augment import augment
from tasks.augment.scene_light import NIGHT_BRIGHTNESS, OUTDOOR_SHARE, light_cue
from tasks.records import SourceItem, Window
from tasks.video_io import decode_normalised

SETTINGS = {name: clip["setting"] for name, clip in load_labels()["clips"].items()
            if clip.get("setting") and "montage" not in clip["category"]}


@pytest.fixture(scope="module")
def first_window():
    cache: dict[str, np.ndarray] = {}

    def get(name: str) -> np.ndarray:
        if name not in cache:
            cache[name] = decode_normalised(LABELS.parent / name, 16, 480, 832, 60.0, 120.0, 81).frames
        return cache[name]

    return get


def test_both_settings_are_labelled() -> None:
    assert {"indoor", "outdoor_day"} <= set(SETTINGS.values())
    counts = {setting: list(SETTINGS.values()).count(setting) for setting in ("indoor", "outdoor_day")}
    assert counts["outdoor_day"] >= 4 and counts["indoor"] >= 8, counts


def test_the_cue_tells_indoor_from_daylit_outdoor(first_window) -> None:
    shares = {}
    for name, setting in SETTINGS.items():
        cue = light_cue(first_window(name))
        shares[name] = (setting, round(cue.sky + cue.vegetation + cue.water, 3), round(cue.brightness, 3))
        assert cue.outdoor_daylight == (setting == "outdoor_day"), (name, cue)
    # The constant sits in the gap between the two labelled groups, not at the edge of one.
    indoor = max(s for setting, s, _ in shares.values() if setting == "indoor")
    outdoor = min(s for setting, s, _ in shares.values() if setting == "outdoor_day")
    assert indoor < OUTDOOR_SHARE < outdoor, shares
    assert min(b for setting, _, b in shares.values() if setting == "outdoor_day") > NIGHT_BRIGHTNESS


def _window(name: str, frames: np.ndarray) -> Window:
    return Window(item=SourceItem(f"real-{name}", "local", name), index=0, start_frame=0, frames=frames[:81],
                  span_s=(0.0, 81 / 16))


@pytest.mark.parametrize(("name", "outdoor"), [("tree-11s.mp4", True), ("edit-vtest-lawn.mp4", True),
                                               ("lego-static.mp4", False), ("cup.mp4", False)])
def test_a_drawn_light_toggle_goes_only_where_a_light_can_go_off(name, outdoor, first_window) -> None:
    aug = augment(_window(name, first_window(name)), "light_toggle", AugmentConfig(), seed=0)
    cue = aug.params["scene_light"]
    assert cue["light_can_go_off"] is (not outdoor) and cue["judged_by"] == "measured"
    if outdoor:
        assert aug.kind is not InterruptionKind.light_toggle and aug.fallback_from == "light_toggle"
        assert "outdoor" in aug.params["fallback"]["reasons"]["light_toggle"]
    else:
        assert aug.kind is InterruptionKind.light_toggle and aug.fallback_from is None


def test_the_check_can_be_turned_off(first_window) -> None:
    config = AugmentConfig()
    config = config.model_copy(update={"light_toggle": config.light_toggle.model_copy(
        update={"only_where_light_can_go_off": False})})
    aug = augment(_window("tree-11s.mp4", first_window("tree-11s.mp4")), "light_toggle", config, seed=0)
    assert aug.kind is InterruptionKind.light_toggle and aug.params["scene_light"]["light_can_go_off"] is False
