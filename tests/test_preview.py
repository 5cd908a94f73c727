"""render_preview: one readable contact sheet per interruption family."""
from __future__ import annotations

import time

import matplotlib.image
import numpy as np
import pytest

from schemas.config import SyntheticConfig
from schemas.config_augment import AugmentConfig
from tasks.augment import KINDS, augment
from tasks.publish.preview import render_preview
from tasks.records import SourceItem, Window
from tasks.sources.synthetic import render_synthetic_clip


@pytest.fixture(scope="module")
def window() -> Window:
    clip = render_synthetic_clip(11, SyntheticConfig(), height=120, width=208)  # translate / static, small
    item = SourceItem(clip_id="synthetic-0-00011", source="synthetic", uri="synthetic://0/11")
    return Window(item=item, index=0, start_frame=0, frames=clip.frames, span_s=(0.0, 81 / 16),
                  truth=clip.to_ground_truth())


@pytest.fixture(scope="module")
def loop_window() -> Window:
    """rotate / pan_return: the camera's own loop hides the wheel (the ball's path is too wide to turn off)."""
    clip = render_synthetic_clip(2, SyntheticConfig(), height=120, width=208)
    item = SourceItem(clip_id="synthetic-0-00002", source="synthetic", uri="synthetic://0/2")
    return Window(item=item, index=0, start_frame=0, frames=clip.frames, span_s=(0.0, 81 / 16),
                  truth=clip.to_ground_truth())


@pytest.mark.parametrize("kind", KINDS)
def test_preview_per_family(window, loop_window, kind, tmp_path):
    window = loop_window if kind == "camera_loop" else window
    aug = augment(window, kind, AugmentConfig(), seed=0)
    assert aug.kind.value == kind
    start = time.perf_counter()
    out = render_preview(window.frames, aug.degraded, aug.graph, f"synthetic 11 -> {kind}", tmp_path / "p" / "a.png")
    elapsed = time.perf_counter() - start
    assert out == tmp_path / "p" / "a.png" and out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    image = matplotlib.image.imread(out)
    assert image.shape[:2] == (600, 1200)
    assert np.ptp(image[..., :3]) > 0.5  # not blank
    assert elapsed < 10  # about 0.5 s on an idle core; generous for loaded CI boxes
