"""PM-RoPE camera descriptors (ReMind Sec. 3.2, Eq. 1), numpy only (imported by the Ray Data decode workers).

Layout (``DESCRIPTOR_DIM`` = 14 floats per latent frame), ``c = [vec(R), t, log fx, log fy]``:

    [0:9]   vec(R): the camera-to-world rotation, row-major (R00, R01, R02, R10, ..., R22)
    [9:12]  t: the camera centre, translations centred and scaled per clip (schemas.cameras.normalise_translations)
    [12]    log(fx / W)
    [13]    log(fy / H)

Each latent frame takes the camera of the LAST video frame it encodes (latent 0 = frame 0, latent l = frame 4l).
A clip without known geometry gets a static camera at the origin with a 60 degree horizontal field of view.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from schemas.cameras import intrinsics_from_hfov, normalise_translations, normalised_intrinsics
from schemas.constants import HEIGHT, LATENT_FRAMES, WIDTH, latent_frames

if TYPE_CHECKING:  # the model imports this module; a sample's MP4 decoding (PyAV) is not the model's
    from schemas.sample_io import Sample

DESCRIPTOR_DIM = 14
DEFAULT_HFOV_DEG = 60.0


def latent_camera_frames() -> np.ndarray:
    """The video frame whose camera stands for each latent frame: the last frame it encodes."""
    return np.array([latent_frames(latent)[1] for latent in range(LATENT_FRAMES)])


def camera_descriptors(
    c2w: np.ndarray | None,
    intrinsics: np.ndarray | None,
    height: int,
    width: int,
    centre: np.ndarray | None = None,
    scale: float | None = None,
) -> np.ndarray:
    """(81,4,4) camera-to-world + (81,3,3) pixel intrinsics of a ``height`` x ``width`` frame -> (21, 14) float32.

    ``centre``/``scale`` reuse another clip's normalisation (the degraded clip shares the clean clip's world);
    by default the clip's own ``normalise_translations`` is used.
    """
    frames = latent_camera_frames()
    if c2w is None or intrinsics is None:
        K = np.broadcast_to(intrinsics_from_hfov(DEFAULT_HFOV_DEG, height, width), (len(frames), 3, 3))
        pose = np.broadcast_to(np.eye(4), (len(frames), 4, 4))
    else:
        if centre is None or scale is None:
            norm, _, _ = normalise_translations(c2w)
        else:
            norm = np.asarray(c2w, dtype=np.float64).copy()
            norm[:, :3, 3] = (norm[:, :3, 3] - centre) / scale
        pose, K = norm[frames], np.asarray(intrinsics, dtype=np.float64)[frames]
    focal = normalised_intrinsics(K, height, width)[:, :2]
    out = np.concatenate([pose[:, :3, :3].reshape(len(frames), 9), pose[:, :3, 3], np.log(focal)], axis=1)
    return out.astype(np.float32)


def sample_cameras(sample: Sample) -> tuple[np.ndarray, np.ndarray]:
    """Descriptors (21, 14) of the clean and the observed clip, both in the clean clip's normalised world."""
    centre = scale = None
    if sample.camera is not None:
        _, centre, scale = normalise_translations(sample.camera)
    clean = camera_descriptors(sample.camera, sample.intrinsics, HEIGHT, WIDTH, centre, scale)
    if sample.degraded_camera is None:
        return clean, clean
    return clean, camera_descriptors(sample.degraded_camera, sample.degraded_intrinsics, HEIGHT, WIDTH, centre, scale)
