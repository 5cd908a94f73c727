"""Synthetic windows with exact ground truth, rendered once per session (about 1-3 s each at 480x832)."""
from __future__ import annotations

import numpy as np
import pytest

from schemas.config import SyntheticConfig
from tasks.records import SourceItem, Window
from tasks.sources.synthetic import SyntheticClip, clip_spec, render_synthetic_clip

STATIC_FILL = 0  # fill / static: a glass filling up in the middle of the frame
LOOP = 2  # rotate / pan_return: the camera turns away (the wheel leaves the view) and comes back
STATIC_ROTATE = 7  # rotate / static: a wheel on the left of the frame
STATIC_TRANSLATE = 11  # translate / static: a ball crossing the frame


def window_from(clip: SyntheticClip, with_truth: bool = True, clip_id: str | None = None) -> Window:
    item = SourceItem(clip_id=clip_id or f"synthetic-{clip.seed}-{clip.index:05d}", source="synthetic",
                      uri=f"synthetic://{clip.seed}/{clip.index}")
    return Window(item=item, index=0, start_frame=0, frames=clip.frames, span_s=(0.0, 81 / 16),
                  truth=clip.to_ground_truth() if with_truth else None)


def _render(index: int, trajectory: str) -> SyntheticClip:
    assert clip_spec(index, SyntheticConfig())[1] == trajectory
    return render_synthetic_clip(index, SyntheticConfig())


@pytest.fixture(scope="session")
def static_clip() -> SyntheticClip:
    return _render(STATIC_FILL, "static")


@pytest.fixture(scope="session")
def loop_clip() -> SyntheticClip:
    return _render(LOOP, "pan_return")


@pytest.fixture(scope="session")
def wheel_clip() -> SyntheticClip:
    return _render(STATIC_ROTATE, "static")


@pytest.fixture(scope="session")
def subject_clip() -> SyntheticClip:
    return _render(STATIC_TRANSLATE, "static")


@pytest.fixture(scope="session")
def static_window(static_clip: SyntheticClip) -> Window:
    return window_from(static_clip)


@pytest.fixture(scope="session")
def bare_window(static_clip: SyntheticClip) -> Window:
    """Pixels only: no truth, no geometry, no dynamic region (a local video before any analysis)."""
    return window_from(static_clip, with_truth=False, clip_id="local-bare")


@pytest.fixture()
def tiny_window() -> Window:
    """A fast 81x96x160 noise window with a small dynamic box on the left, for properties over many seeds."""
    rng = np.random.default_rng(7)
    frames = rng.integers(0, 256, size=(81, 96, 160, 3), dtype=np.uint8)
    item = SourceItem(clip_id="tiny", source="local", uri="file:///tiny.mp4")
    return Window(item=item, index=0, start_frame=0, frames=frames, span_s=(0.0, 81 / 16),
                  dynamic_box=(20, 30, 44, 54))


def marker_centroid(image: np.ndarray, x: float, y: float, radius: float) -> tuple[float, float]:
    """Darkness-weighted centroid inside a disc around (x, y): the marker's white pad makes it exact."""
    gray = image.astype(np.float64).mean(axis=-1)
    r = int(np.ceil(radius)) + 1
    x0, y0 = int(round(x)) - r, int(round(y)) - r
    ys, xs = np.mgrid[y0:y0 + 2 * r + 1, x0:x0 + 2 * r + 1]
    weight = (255.0 - gray[y0:y0 + 2 * r + 1, x0:x0 + 2 * r + 1]) * (np.hypot(xs - x, ys - y) <= radius)
    return float((weight * xs).sum() / weight.sum()), float((weight * ys).sum() / weight.sum())


def footprint_visibility(mask: np.ndarray, H: np.ndarray) -> float:
    """Ground truth for view-moving kinds: the fraction of the generator's full-resolution object mask inside the
    source-frame polygon the degraded frame shows (its border through the inverse of the clean -> degraded map)."""
    import cv2

    h, w = mask.shape
    corners = np.array([[-0.5, -0.5, 1], [w - 0.5, -0.5, 1], [w - 0.5, h - 0.5, 1], [-0.5, h - 0.5, 1]]).T
    src = np.linalg.inv(H) @ corners
    poly = (src[:2] / src[2]).T
    shown = np.zeros((h, w), np.uint8)
    cv2.fillPoly(shown, [np.round(poly * 16).astype(np.int32)], 1, shift=4)  # pixel centres are integers
    return float((mask & shown.astype(bool)).sum() / max(1, mask.sum()))


def check_common(aug, window: Window) -> None:
    """What every interrupted result must satisfy: valid graph with the issue-12 invariants, 81-entry fields, an
    interval of whole chunks in 9..68, a hidden chunk, and clean == degraded outside the interval."""
    from schemas.graph import FrameGraph, NodeRole
    from schemas.graph_checks import graph_problems

    graph = aug.graph
    assert FrameGraph.model_validate(graph.model_dump()).problems() == []
    assert graph_problems(graph) == []
    assert all(len(v) == 81 for v in graph.per_frame.values())
    itr = graph.interruption
    assert itr.kind.value == aug.kind.value
    assert 9 <= itr.start_frame <= itr.end_frame <= 68
    roles = graph.roles()
    assert roles[0] is NodeRole.anchor and NodeRole.recovery in roles
    assert aug.degraded is not None and aug.degraded.shape == window.frames.shape
    assert aug.degraded.dtype == np.uint8
    vis = np.array(graph.per_frame["event_visibility"])
    hs, he = graph.event_frames["hidden_start"], graph.event_frames["hidden_end"]
    assert he - hs + 1 >= 12 and vis[hs:he + 1].max() <= graph.hidden_max_visibility
    clean = aug.clean_frames if aug.clean_frames is not None else window.frames
    outside = np.r_[0:itr.start_frame, itr.end_frame + 1:81]
    assert np.array_equal(clean[outside], aug.degraded[outside])
    assert aug.description  # degraded.txt
    for arr, shape in ((aug.degraded_camera, (81, 4, 4)), (aug.degraded_intrinsics, (81, 3, 3))):
        assert arr is None or (arr.shape == shape and arr.dtype == np.float32)
