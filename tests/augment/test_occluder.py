"""occluder: textured, shaded, soft-edged objects from any side, straight or curved, person-sized silhouettes;
the hidden chunk and the visibility re-derived from the pixels over the generator's masks."""
from __future__ import annotations

import numpy as np
import pytest

from schemas.config_augment import AugmentConfig, OccluderConfig
from tasks.augment import augment
from tasks.augment.occluder_art import make_sprite
from tests.augment.conftest import check_common

SHARP = OccluderConfig(cover="dynamic_region", edge_softness_px=(0.0, 0.0), motion_blur=False)


def test_visibility_is_what_the_pixels_show_over_the_generators_mask(static_window, static_clip):
    """With hard edges and no motion blur, a mask pixel is hidden exactly where the degraded frame differs from
    the clean one: that fraction over the full-resolution mask re-derives event_visibility within 0.02."""
    aug = augment(static_window, "occluder", AugmentConfig(occluder=SHARP), seed=4)
    check_common(aug, static_window)
    vis = np.array(aug.graph.per_frame["event_visibility"])
    for t in range(81):
        mask = static_clip.object_mask[t]
        same = (np.abs(aug.degraded[t].astype(int) - static_clip.frames[t]).max(axis=-1) <= 1)[mask]
        assert abs(same.mean() - vis[t]) <= 0.02, (t, same.mean(), vis[t])
    assert np.allclose(np.array(aug.graph.per_frame["occluder_coverage"]), 1 - vis, atol=1e-4)


@pytest.mark.parametrize("side", ["left", "right", "top", "bottom"])
def test_enters_from_the_configured_side_and_leaves_opposite(static_window, side):
    config = AugmentConfig(occluder=OccluderConfig(sides=[side], shapes=["person"], cover="dynamic_region"))
    aug = augment(static_window, "occluder", config, seed=5)
    check_common(aug, static_window)
    assert aug.params["shape"] == "person" and aug.params["side"] == side
    enter = aug.graph.event_frames["enter"]
    changed = np.abs(aug.degraded[enter].astype(int) - static_window.frames[enter]).max(axis=-1) > 8
    ys, xs = np.nonzero(changed)
    edge = {"left": xs.min(), "right": 831 - xs.max(), "top": ys.min(), "bottom": 479 - ys.max()}[side]
    assert edge == 0  # the first touched pixels are on the entry side
    assert aug.params["size_px"][1] > 480  # person-sized: taller than the frame this close to the camera


def test_sprites_are_textured_shaded_and_soft():
    rng = np.random.default_rng(0)
    for shape in ("rect", "ellipse", "person"):
        premult, alpha = make_sprite(shape, (120, 200), rng, True, 3.0)
        inside = alpha > 0.99
        colour = premult[inside] / alpha[inside][:, None]
        assert colour.std(axis=0).mean() > 0.02  # texture and shading, not a flat fill
        assert ((alpha > 0.05) & (alpha < 0.95)).sum() > 100  # a soft edge
    person = make_sprite("person", (120, 300), rng, True, 0.0)[1] > 0.5
    assert person[:40].sum() < person[100:140].sum()  # a head narrower than the shoulders


def test_curved_paths_move_off_the_straight_line(static_window):
    config = AugmentConfig(occluder=OccluderConfig(paths=["curved"], sides=["left"], cover="dynamic_region",
                                                   shapes=["ellipse"]))
    aug = augment(static_window, "occluder", config, seed=6)
    check_common(aug, static_window)
    assert aug.params["path"] == "curved" and aug.params["scale_in"] != aug.params["scale_out"]
    ev = aug.graph.event_frames
    rows = []
    for t in range(ev["enter"], ev["enter"] + 6):
        changed = np.abs(aug.degraded[t].astype(int) - static_window.frames[t]).max(axis=-1) > 8
        ys, _ = np.nonzero(changed)
        rows.append(ys.mean())
    assert np.ptp(rows) > 5  # entering from the left, its height changes along the way
