"""occluder: coverage is measured on the rendered mask; the nodes come from it."""
from __future__ import annotations

import numpy as np
import pytest

from schemas.config import AugmentConfig, OccluderConfig
from tasks.augment import augment
from tasks.augment.occluder import occluder_mask
from tests.augment.conftest import check_common


def test_masks_are_exact_shapes():
    rect = occluder_mask((40, 60), "rect", (30.0, 20.0), (10.0, 5.0))
    assert rect.sum() == 21 * 11 and rect[15, 20] and not rect[14, 20]
    ellipse = occluder_mask((40, 60), "ellipse", (30.0, 20.0), (10.0, 5.0))
    assert ellipse[20, 20] and ellipse[15, 30] and not ellipse[15, 21] and ellipse.sum() < rect.sum()
    assert not occluder_mask((40, 60), "rect", (-12.0, 20.0), (10.0, 5.0)).any()


@pytest.mark.parametrize(("shape", "cover", "seed"), [("rect", "dynamic_region", 0), ("ellipse", "dynamic_region", 1),
                                                     ("rect", "full_frame", 2), ("ellipse", "full_frame", 3)])
def test_covers_the_region_then_leaves(static_window, shape, cover, seed):
    config = AugmentConfig(occluder=OccluderConfig(shapes=[shape], cover=cover, textured=False))
    aug = augment(static_window, "occluder", config, seed=seed)
    check_common(aug, static_window)
    g, p = aug.graph, aug.params
    ev = g.event_frames
    assert p["shape"] == shape and p["cover"] == cover
    assert ev["enter"] < ev["full_cover_start"] <= ev["full_cover_end"] < ev["exit"]
    assert (g.interruption.start_frame, g.interruption.end_frame) == (ev["enter"], ev["exit"])
    assert g.anchor_frames == [ev["enter"] - 1] and g.recovery_frames == [ev["exit"] + 1]

    coverage = np.array(g.per_frame["occluder_coverage"])
    full = slice(ev["full_cover_start"], ev["full_cover_end"] + 1)
    assert (coverage[full] == 1.0).all() and (coverage[: ev["full_cover_start"]] < 1).all()
    assert (coverage[ev["full_cover_end"] + 1:] < 1).all()
    # anchor and recovery sides are the clean clip; the occluder is visible exactly on [enter, exit]
    changed = (aug.degraded != static_window.frames).any(axis=(1, 2, 3))
    assert not changed[: ev["enter"]].any() and not changed[ev["exit"] + 1:].any()
    assert changed[ev["enter"]] and changed[ev["exit"]]
    # coverage is the fraction of the region painted (a solid colour differs from almost every clean pixel)
    x0, y0, x1, y1 = p["region"]
    colour = np.array(p["colours"][0], np.uint8)
    for t in range(ev["enter"], ev["exit"] + 1, 3):
        painted = (aug.degraded[t, y0:y1, x0:x1] == colour).all(axis=-1)
        differs = (aug.degraded[t, y0:y1, x0:x1] != static_window.frames[t, y0:y1, x0:x1]).any(axis=-1)
        assert differs.mean() <= coverage[t] + 1e-5 and abs(painted.mean() - coverage[t]) < 1e-4 + differs.size ** -1


def test_region_defaults_to_the_moving_object(static_window):
    aug = augment(static_window, "occluder", AugmentConfig(occluder=OccluderConfig(cover="dynamic_region")), seed=0)
    boxes = static_window.truth.object_box
    assert aug.params["region"] == [int(np.nanmin(boxes[:, 0])), int(np.nanmin(boxes[:, 1])),
                                    int(np.nanmax(boxes[:, 2])), int(np.nanmax(boxes[:, 3]))]


def test_slow_occluder_is_sped_up_to_fit(tiny_window):
    config = AugmentConfig(occluder=OccluderConfig(speed_px_per_frame=(0.5, 0.5), hold_frames=(70, 70)))
    aug = augment(tiny_window, "occluder", config, seed=0)
    check_common(aug, tiny_window)
    assert aug.params["speed_px_per_frame"] > 0.5
