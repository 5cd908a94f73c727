"""Clean and degraded are the same video outside the interval, after H.264 and back: PSNR >= 38 dB for every kind
(both clips carry an IDR frame at every chunk start, as tasks.samples encodes them)."""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from schemas.config_augment import AugmentConfig
from tasks.augment import augment
from tasks.augment.clean_view import CHUNK_KEYFRAMES
from tasks.sources.synthetic import render_clip
from schemas.mp4 import decode_mp4
from tasks.video_io import encode_h264
from tests.augment.conftest import window_from


def psnr(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    mse = ((a.astype(np.float64) - b.astype(np.float64)) ** 2).mean(axis=(1, 2, 3))
    return 10 * np.log10(255.0 ** 2 / np.maximum(mse, 1e-10))


@pytest.mark.slow
def test_outside_the_interval_psnr_is_at_least_38_db_for_every_kind():
    clip = render_clip(0, 7, "rotate", "static", height=240, width=416)
    window = replace(window_from(clip, with_truth=False, clip_id="local-wheel"), camera_c2w=clip.camera_c2w,
                     intrinsics=clip.intrinsics, dynamic_box=(60, 80, 130, 160))
    for kind in ("light_toggle", "occluder", "zoom", "camera_loop", "exit_entry"):
        aug = augment(window, kind, AugmentConfig(), seed=0)
        assert aug.kind.value == kind, aug.params.get("fallback")
        clean = aug.clean_frames if aug.clean_frames is not None else window.frames
        decoded = [decode_mp4(encode_h264(x, 16, 23, "veryfast", 0, CHUNK_KEYFRAMES)) for x in (clean, aug.degraded)]
        itr = aug.graph.interruption
        outside = np.r_[0:itr.start_frame, itr.end_frame + 1:81]
        assert psnr(decoded[0][outside], decoded[1][outside]).min() >= 38.0, kind
