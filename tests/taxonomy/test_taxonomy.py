"""Tests of the dynamic-event taxonomy: packaged data, validation on load, lookups, filters and the table."""
from __future__ import annotations

import copy
import statistics
from pathlib import Path
from typing import Any

import pytest
import yaml

from taxonomy import GROUPS, EventType, Taxonomy, format_taxonomy_table, load_taxonomy
from taxonomy.model import GROUP_CANDIDATES

REQUIRED = {
    "container_filling": "monotonic_state",
    "ball_rolling": "translational",
    "fan_rotation": "periodic",
    "balloon_inflating": "monotonic_state",
    "lamp_dimming": "lighting_weather",
    "person_walking": "translational",
    "light_switch": "lighting_weather",
}
# F.1's high-priority monotonic state changes: pouring/filling, burning, melting, growing, diffusion.
HIGH_PRIORITY = ["container_filling", "paper_burning", "ice_melting", "plant_growing", "ink_diffusing"]


@pytest.fixture(scope="module")
def tax() -> Taxonomy:
    return load_taxonomy()


def _event(event_id: str, group: str, **overrides: Any) -> dict[str, Any]:
    event = {
        "id": event_id,
        "group": group,
        "name": event_id.replace("_", " "),
        "description": f"a {group} event",
        "keywords": [f"{event_id} one", f"{event_id} two", f"{event_id} three"],
        "negative_filters": ["slow motion"],
        "caption_cues": {"object": "thing", "state_variable": "level", "direction": "rising"},
        "salience": 0.5,
        "frequency": 0.5,
        "recovery": 0.5,
    }
    event.update(overrides)
    return event


def _minimal() -> dict[str, Any]:
    return {
        "version": "1",
        "default_negative_filters": ["animation", "text"],
        "events": [_event(f"{group}_a", group) for group in GROUPS],
    }


def _write(tmp_path: Path, data: dict[str, Any]) -> Path:
    path = tmp_path / "events.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


# ---------------------------------------------------------------- packaged data


def test_packaged_taxonomy_size_and_groups(tax: Taxonomy) -> None:
    assert len(tax.events) >= 110
    assert tax.version == "1"
    assert set(GROUPS) == set(GROUP_CANDIDATES)
    for group in GROUPS:
        assert len(tax.in_group(group)) >= 6, group
    assert sum(len(tax.in_group(g)) for g in GROUPS) == len(tax.events)


def test_group_sizes_follow_candidate_counts(tax: Taxonomy) -> None:
    # Table 7's two largest groups get at least as many types as its two smallest.
    sizes = {g: len(tax.in_group(g)) for g in GROUPS}
    assert min(sizes["translational"], sizes["monotonic_state"]) >= max(sizes["periodic"], sizes["discrete"])


@pytest.mark.parametrize(("event_id", "group"), sorted(REQUIRED.items()))
def test_required_ids(tax: Taxonomy, event_id: str, group: str) -> None:
    assert tax.group_of(event_id) == group
    assert tax.by_id(event_id).id == event_id


def test_ids_unique_and_well_formed(tax: Taxonomy) -> None:
    ids = tax.ids()
    assert len(ids) == len(set(ids))
    assert all(e.id == i for e, i in zip(tax.events, ids))


def test_every_type_is_complete(tax: Taxonomy) -> None:
    for event in tax.events:
        assert 3 <= len(event.keywords) <= 6, event.id
        assert event.negative_filters, event.id
        cues = event.caption_cues
        assert cues.object and cues.state_variable and cues.direction, event.id
        assert 0.0 <= event.importance <= 1.0


def test_no_keyword_is_disqualified_by_its_own_filters(tax: Taxonomy) -> None:
    for event in tax.events:
        for keyword in event.keywords:
            assert tax.matches_negative(event.id, keyword) is None, (event.id, keyword)


def test_keywords_not_shared_between_types(tax: Taxonomy) -> None:
    owners: dict[str, str] = {}
    for event in tax.events:
        for keyword in event.keywords:
            assert keyword not in owners, (keyword, owners.get(keyword), event.id)
            owners[keyword] = event.id


def test_high_priority_types_rank_high(tax: Taxonomy) -> None:
    median = statistics.median(e.importance for e in tax.events)
    for event_id in HIGH_PRIORITY:
        assert tax.by_id(event_id).importance >= 0.8 > median, event_id
    top = sorted(tax.events, key=lambda e: -e.importance)[:10]
    assert {e.group for e in top} <= {"monotonic_state", "lighting_weather", "interaction", "discrete"}


def test_default_load_is_cached(tax: Taxonomy) -> None:
    assert load_taxonomy() is tax
    assert load_taxonomy(Path(__file__).parents[2] / "taxonomy" / "events.yaml") is not tax


# ---------------------------------------------------------------- model behaviour


def test_importance_formula() -> None:
    event = EventType.model_validate(_event("x_y", "periodic", salience=0.3, frequency=0.9, recovery=0.7))
    assert event.importance == round(0.4 * 0.7 + 0.35 * 0.3 + 0.25 * 0.9, 4) == 0.61
    assert "importance" not in event.model_dump()


def test_importance_matches_formula_for_every_packaged_type(tax: Taxonomy) -> None:
    for e in tax.events:
        assert e.importance == round(0.4 * e.recovery + 0.35 * e.salience + 0.25 * e.frequency, 4)


def test_all_negative_filters_order_and_exemptions(tax: Taxonomy) -> None:
    event = EventType.model_validate(
        _event("a_b", "discrete", negative_filters=["Slow  Motion", "text"], allowed_default_filters=["logo"])
    )
    assert event.negative_filters == ["slow motion", "text"]
    assert event.all_negative_filters(["animation", "text", "logo"]) == ["slow motion", "text", "animation"]
    assert "text" not in tax.negative_filters_for("page_flip")
    assert "text" in tax.negative_filters_for("container_filling")


def test_matches_negative(tax: Taxonomy) -> None:
    slug = "https://www.pexels.com/video/pouring-water-into-a-glass-in-slow-motion-853/"
    assert tax.matches_negative("container_filling", slug) == "slow motion"
    assert tax.matches_negative("container_filling", "Time-Lapse of a glass filling") == "time lapse"
    assert tax.matches_negative("container_filling", "animations_of_water") == "animation"
    assert tax.matches_negative("container_filling", "3D Render of a glass") == "3d render"
    assert tax.matches_negative("container_filling", "pouring water into glass close up") is None
    # Whole words only: "context" and "textured" do not contain the filter "text".
    assert tax.matches_negative("container_filling", "context: a textured glass") is None
    # Timelapse is how blooming is filmed, so it is not a filter there.
    assert tax.matches_negative("flower_blooming", "rose blooming timelapse 4k") is None
    assert tax.matches_negative("page_flip", "book pages with text") is None
    with pytest.raises(KeyError):
        tax.matches_negative("no_such_event", "anything")


def test_by_id_suggests_close_matches(tax: Taxonomy) -> None:
    with pytest.raises(KeyError, match="container_filling"):
        tax.by_id("container_filing")
    with pytest.raises(KeyError, match="unknown event type 'zzz'"):
        tax.by_id("zzz")


def test_in_group_rejects_unknown_group(tax: Taxonomy) -> None:
    with pytest.raises(ValueError, match="unknown group 'weather'"):
        tax.in_group("weather")


def test_format_taxonomy_table(tax: Taxonomy) -> None:
    table = format_taxonomy_table(tax)
    for event_id in tax.ids():
        assert event_id in table
    lines = table.splitlines()
    assert lines[0].split()[:3] == ["id", "group", "importance"]
    rows = [line.split() for line in lines[2 : 2 + len(tax.events)]]
    keys = [(GROUPS.index(r[1]), -float(r[2])) for r in rows]
    assert keys == sorted(keys)
    for group in GROUPS:
        assert any(line.split() == [group, str(len(tax.in_group(group)))] for line in lines)
    assert lines[-1].split() == ["total", str(len(tax.events))]


def test_format_taxonomy_table_one_group(tax: Taxonomy) -> None:
    table = format_taxonomy_table(tax, "periodic")
    assert "fan_rotation" in table and "container_filling" not in table
    assert table.splitlines()[-1].split() == ["total", str(len(tax.in_group("periodic")))]


# ---------------------------------------------------------------- validation on load


def test_minimal_yaml_loads(tmp_path: Path) -> None:
    tax = load_taxonomy(_write(tmp_path, _minimal()))
    assert tax.ids() == [f"{g}_a" for g in GROUPS]


def test_duplicate_id_fails(tmp_path: Path) -> None:
    data = _minimal()
    data["events"].append(copy.deepcopy(data["events"][0]))
    with pytest.raises(ValueError, match=r"duplicate event id 'translational_a' \(events\[0\] and events\[7\]\)"):
        load_taxonomy(_write(tmp_path, data))


def test_unknown_group_fails(tmp_path: Path) -> None:
    data = _minimal()
    data["events"].append(_event("weird_one", "weather"))
    with pytest.raises(ValueError, match=r"event 'weird_one' \(events\[7\]\): field 'group'.*'weather'"):
        load_taxonomy(_write(tmp_path, data))


def test_score_out_of_range_fails(tmp_path: Path) -> None:
    data = _minimal()
    data["events"][2]["salience"] = 1.5
    with pytest.raises(ValueError, match=r"event 'deformation_a' \(events\[2\]\): field 'salience'.*1\.5"):
        load_taxonomy(_write(tmp_path, data))


def test_missing_group_fails(tmp_path: Path) -> None:
    data = _minimal()
    data["events"] = [e for e in data["events"] if e["group"] != "periodic"]
    with pytest.raises(ValueError, match="no events in group.*periodic"):
        load_taxonomy(_write(tmp_path, data))


@pytest.mark.parametrize(
    ("field", "value", "pattern"),
    [
        ("id", "Bad-Id", r"event 'Bad-Id' \(events\[0\]\): field 'id'"),
        ("keywords", [], r"field 'keywords'"),
        ("keywords", ["a", "a", "b"], r"field 'keywords'.*repeats 'a'"),
        ("caption_cues", {"object": "x", "state_variable": "", "direction": "up"}, r"field 'caption_cues.state_variable'"),
        ("caption_cues", {"object": "x", "direction": "up"}, r"field 'caption_cues.state_variable'.*required"),
        ("importance", 0.9, r"field 'importance'.*not permitted"),
        ("allowed_default_filters", ["montage"], r"'allowed_default_filters'.*montage"),
    ],
)
def test_bad_event_field_fails(tmp_path: Path, field: str, value: Any, pattern: str) -> None:
    data = _minimal()
    data["events"][0][field] = value
    with pytest.raises(ValueError, match=pattern):
        load_taxonomy(_write(tmp_path, data))


def test_missing_score_names_id(tmp_path: Path) -> None:
    data = _minimal()
    del data["events"][4]["recovery"]
    with pytest.raises(ValueError, match=r"event 'interaction_a' \(events\[4\]\): field 'recovery': Field required"):
        load_taxonomy(_write(tmp_path, data))


def test_bad_top_level_fails(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("- just\n- a list\n", encoding="utf-8")
    with pytest.raises(ValueError, match="top level must be a mapping"):
        load_taxonomy(path)
    path.write_text("version: '1'\nevents: [\n", encoding="utf-8")
    with pytest.raises(ValueError, match="not valid YAML"):
        load_taxonomy(path)
    data = _minimal()
    data["extra"] = 1
    with pytest.raises(ValueError, match="field 'extra'"):
        load_taxonomy(_write(tmp_path, data))
