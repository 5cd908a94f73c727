"""Test data builders for the VLM tests."""
from __future__ import annotations

from typing import Any

import numpy as np

from tasks.records import SourceItem, Window
from tests.servers.openai_server import decode_videos


def make_windows(count: int, shape: tuple[int, int, int] = (9, 48, 80), seed: int = 0) -> list[Window]:
    """Windows of seeded random frames; shape = (frames, height, width)."""
    rng = np.random.default_rng(seed)
    return [Window(item=SourceItem(f"test-{seed}-{i}", "synthetic", f"synthetic://{i}"), index=0, start_frame=0,
                   frames=rng.integers(0, 256, (*shape, 3), dtype=np.uint8), span_s=(0.0, shape[0] / 16))
            for i in range(count)]


def first_frame_level(body: dict[str, Any]) -> float:
    """Mean brightness (0..1) of the first frame of the video a request carries."""
    [video] = decode_videos(body)
    return float(video.frames[0].mean()) / 255
