"""light_toggle: the dimming schedule defines the nodes exactly."""
from __future__ import annotations

import numpy as np

from schemas.config import AugmentConfig, LightToggleConfig
from schemas.constants import frame_to_chunk
from schemas.graph import NodeRole
from tasks.augment import augment
from tasks.augment.light import GAMMA, light_schedule
from tests.augment.conftest import check_common


def test_schedule_shape():
    level = light_schedule(81, 20, fade_out=4, dark=10, fade_in=5, min_level=0.1)
    assert (level[:20] == 1).all() and (level[39:] == 1).all()
    assert np.all(np.diff(level[19:25]) < 0) and (level[24:34] == 0.1).all() and np.all(np.diff(level[33:40]) > 0)


def test_nodes_follow_the_schedule(static_window):
    config = AugmentConfig()
    aug = augment(static_window, "light_toggle", config, seed=0)
    check_common(aug, static_window)
    p, g = aug.params, aug.graph
    start = p["start_frame"]
    expected = {"fade_out_start": start, "dark_start": start + p["fade_out_frames"],
                "dark_end": start + p["fade_out_frames"] + p["dark_frames"] - 1,
                "fade_in_end": start + p["fade_out_frames"] + p["dark_frames"] + p["fade_in_frames"] - 1}
    assert g.event_frames == expected
    assert (g.interruption.start_frame, g.interruption.end_frame) == (start, expected["fade_in_end"])
    assert g.anchor_frames == [start - 1] and g.recovery_frames == [expected["fade_in_end"] + 1]
    # chunk roles: the chunks overlapping the interval are degraded, the next one is the recovery node
    assert g.nodes[frame_to_chunk(start) - 1].role is NodeRole.anchor
    assert g.nodes[frame_to_chunk(expected["fade_in_end"]) + 1].role is NodeRole.recovery

    level = np.array(g.per_frame["light_level"])
    lo, hi = config.light_toggle.min_level
    assert lo <= p["min_level"] <= hi
    dark = slice(expected["dark_start"], expected["dark_end"] + 1)
    assert np.allclose(level[dark], p["min_level"]) and level.min() == level[dark].min()
    assert (level[:start] == 1).all() and (level[expected["fade_in_end"] + 1:] == 1).all()
    # pixels: untouched outside the interruption, dimmed by level ** (1 / gamma) inside
    outside = np.r_[0:start, expected["fade_in_end"] + 1:81]
    assert np.array_equal(aug.degraded[outside], static_window.frames[outside])
    t = expected["dark_start"]
    expect = static_window.frames[t].astype(float) * p["min_level"] ** (1 / GAMMA)
    assert np.abs(aug.degraded[t].astype(float) - expect).max() <= 0.5 + 1e-9


def test_partial_darkness_reaches_the_configured_level(tiny_window):
    config = AugmentConfig(light_toggle=LightToggleConfig(min_level=(0.3, 0.3), dark_frames=(5, 5)))
    aug = augment(tiny_window, "light_toggle", config, seed=4)
    level = np.array(aug.graph.per_frame["light_level"])
    ev = aug.graph.event_frames
    assert np.allclose(level[ev["dark_start"]:ev["dark_end"] + 1], 0.3) and ev["dark_end"] - ev["dark_start"] == 4
    assert level.min() == 0.3
