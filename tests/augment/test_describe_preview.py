"""degraded.txt from the parameters, and previews that plot event_visibility with the hidden interval shaded."""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from schemas.config_augment import AugmentConfig
from schemas.constants import NUM_FRAMES
from schemas.graph import InterruptionKind
from tasks.augment import augment
from tasks.augment.describe import describe
from tasks.graph import chunked_graph
from tasks.publish.preview import _curves, render_preview


def test_light_text_says_when_the_lights_go_out_and_come_back(tiny_window):
    aug = augment(tiny_window, "light_toggle", AugmentConfig(), seed=0)
    ev = aug.graph.event_frames
    text = aug.description
    assert f"out at {ev['fade_out_start'] / 16:.1f} s" in text
    assert f"off for {(ev['dark_end'] - ev['dark_start'] + 1) / 16:.1f} s" in text
    assert f"back on at {(ev['fade_in_end'] + 1) / 16:.1f} s" in text
    assert f"out of sight from {ev['hidden_start'] / 16:.1f} s" in text


def test_each_kind_describes_itself(tiny_window):
    words = {"occluder": "passes in front", "zoom": "zooms in", "camera_loop": "turns", "exit_entry": "pans"}
    for kind, phrase in words.items():
        aug = augment(tiny_window, kind, AugmentConfig(), seed=1)
        assert phrase in aug.description and aug.description == describe(kind, aug.graph, aug.params)


def test_preview_plots_visibility_and_shades_the_hidden_interval(tmp_path):
    vis = [0.0 if 21 <= f <= 44 else 1.0 for f in range(NUM_FRAMES)]
    graph = chunked_graph(InterruptionKind.occluder, 1, 4, vis, 0.05, event_frames={"enter": 10, "exit": 50})
    fig, ax = plt.subplots()
    _curves(ax, graph)
    lines = {line.get_label(): line for line in ax.get_lines()}
    assert np.array_equal(lines["event_visibility"].get_ydata(), vis)
    spans = [p for p in ax.patches if p.get_label().startswith("hidden 21-44")]
    assert len(spans) == 1 and spans[0].get_x() == 20.5 and spans[0].get_width() == 24
    plt.close(fig)
    frames = np.zeros((NUM_FRAMES, 48, 80, 3), np.uint8)
    assert render_preview(frames, frames, graph, "t", tmp_path / "p.png").stat().st_size > 1000
