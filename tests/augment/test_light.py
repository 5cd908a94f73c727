"""light_toggle in linear light: the dark chunk hides the event, the visibility is what the pixels say, local lamps,
black level and sensor noise."""
from __future__ import annotations

import numpy as np
import pytest

from schemas.config_augment import AugmentConfig, LightToggleConfig
from tasks.augment import augment
from tasks.augment.light import SRGB_TO_LINEAR, linear_to_srgb, standard_normal
from tests.augment.conftest import check_common

PLAIN = LightToggleConfig(black_level=(0.0, 0.0), noise=(0.0, 0.0), colour_shift_probability=0.0)


def test_linear_light_round_trip():
    values = np.arange(256, dtype=np.uint8)
    assert np.array_equal(linear_to_srgb(SRGB_TO_LINEAR[values]), values)


def test_sensor_noise_is_standard_normal_and_reproducible():
    from scipy.stats import kstest

    samples = standard_normal(np.random.default_rng(3), (400, 500))
    assert samples.dtype == np.float32 and samples.shape == (400, 500)
    assert abs(samples.mean()) < 0.01 and abs(samples.std() - 1) < 0.01 and 4 < np.abs(samples).max() < 4.5
    assert kstest(samples.ravel()[:20000], "norm").pvalue > 0.01
    assert np.array_equal(samples, standard_normal(np.random.default_rng(3), (400, 500)))


@pytest.mark.parametrize("local", [0.0, 1.0])
def test_visibility_is_the_light_on_the_generators_mask(static_window, static_clip, local):
    """Without noise, black level or tint the degraded/clean ratio in linear light is the gain: its mean over the
    generator's full-resolution object mask re-derives event_visibility within 0.02 on every frame."""
    config = AugmentConfig(light_toggle=PLAIN.model_copy(update={"local_probability": local}))
    aug = augment(static_window, "light_toggle", config, seed=1)
    check_common(aug, static_window)
    assert aug.params["mode"] == ("local" if local else "global")
    vis = np.array(aug.graph.per_frame["event_visibility"])
    for t in range(0, 81, 2):
        mask = static_clip.object_mask[t]
        clean = SRGB_TO_LINEAR[static_clip.frames[t]][mask].sum(axis=-1)
        dark = SRGB_TO_LINEAR[aug.degraded[t]][mask].sum(axis=-1)
        bright = clean > 0.05  # the ratio of near-black pixels is all quantisation
        truth = float(np.mean(dark[bright] / clean[bright]))
        assert abs(truth - vis[t]) <= 0.02, (t, truth, vis[t])
    if local:  # the lamp lights the event's region only: the far corner of the frame keeps its light
        hs = aug.graph.event_frames["hidden_start"]
        corner = (slice(0, 60), slice(0, 60)) if aug.params["lamp_region"][0] > 200 else (slice(0, 60), slice(-60, None))
        assert np.abs(aug.degraded[hs][corner].astype(int) - static_clip.frames[hs][corner]).mean() < 2


def test_dark_frames_are_noisy_lifted_and_tinted(static_window, static_clip):
    config = AugmentConfig(light_toggle=LightToggleConfig(black_level=(0.006, 0.006), noise=(1.2, 1.2),
                                                          colour_shift_probability=1.0, local_probability=0.0))
    aug = augment(static_window, "light_toggle", config, seed=2)
    check_common(aug, static_window)
    hs = aug.graph.event_frames["hidden_start"]
    dark = aug.degraded[hs].astype(np.float64)
    assert dark.mean() < 0.3 * static_clip.frames[hs].mean()
    quiet = AugmentConfig(light_toggle=config.light_toggle.model_copy(update={"noise": (0.0, 0.0)}))
    lifted = augment(static_window, "light_toggle", quiet, seed=2).degraded[hs]
    assert np.percentile(lifted, 1) >= 10  # the black level lifts every dark pixel: not a zeroed frame
    assert np.std(dark - aug.degraded[hs + 1].astype(np.float64)) > 2  # fresh sensor noise every frame
    assert dark[..., 2].mean() > dark[..., 0].mean()  # the cool cast
    assert aug.params["colour_shift"][0] < 1.0 and aug.params["black_level"] == 0.006
