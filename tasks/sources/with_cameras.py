"""Dispatch for sources that carry their own cameras: decode frames and cameras together, or say it does not apply."""
from __future__ import annotations

from typing import Any

import numpy as np

from schemas.config import Config
from tasks.records import SourceItem
from tasks.sources.native import NativeGeometry
from tasks.video_io import _run_with_deadline


def decode_with_cameras(item: SourceItem, config: Config, limit: int | None
                        ) -> tuple[np.ndarray, NativeGeometry, dict[str, Any]] | None:
    """(frames, native cameras, source facts) for a DL3DV scene or a manifest row with a camera file; None otherwise.

    Runs under ``normalise.decode_timeout_s`` like any decode (a stalled mount fails the input with DecodeTimeout)."""
    if item.source == "dl3dv":
        from tasks.sources.dl3dv import decode_dl3dv as decode
    elif item.provenance.get("camera_file"):
        from tasks.sources.video_cameras import decode_video_with_cameras as decode
    else:
        return None
    return _run_with_deadline(lambda: decode(item, config, limit), config.normalise.decode_timeout_s,
                              item.uri.rsplit("/", 1)[-1])
