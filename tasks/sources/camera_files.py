"""Readers of camera files as datasets ship them: nerfstudio ``transforms.json`` and COLMAP sparse models.

Both give a ``CameraTrack``: per-frame image paths, OpenCV camera-to-world poses and OpenCV (pixel-centre)
intrinsics. Conventions converted here, once:

- nerfstudio's ``transform_matrix`` is camera-to-world with OpenGL camera axes (x right, y up, z back): right-
  multiplied by diag(1, -1, -1, 1). Its world frame (``applied_transform``, a rigid axis swap) does not matter:
  every window is re-anchored to its first frame.
- COLMAP's ``images`` hold world-to-camera poses (OpenCV axes): inverted.
- Both put the image's top-left corner at (0, 0): the principal point moves by half a pixel
  (``native.corner_to_centre_intrinsics``).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from schemas.cameras import invert_pose, rescale_intrinsics
from tasks.sources.native import corner_to_centre_intrinsics, opengl_to_opencv

IMAGE_DIRS = ("images", "images_2", "images_4", "images_8")  # DL3DV ships downscaled copies beside the cameras


@dataclass
class CameraTrack:
    images: list[Path]  # in capture order
    camera_c2w: np.ndarray  # (N,4,4) OpenCV axes
    intrinsics: np.ndarray  # (N,3,3) OpenCV pixel-centre convention, pixels of ``image_hw``
    image_hw: tuple[int, int]  # size of the files in ``images`` (the intrinsics are scaled to it)
    distortion: np.ndarray | None  # OpenCV coefficients (k1, k2, p1, p2[, k3]) when any is non-zero
    fps: float | None = None  # capture rate, when the file records it
    depth: list[Path] | None = None
    depth_scale: float = 1e-3  # depth file units -> pose units (nerfstudio: uint16 millimetres)
    format: str = ""


def find_image(base: Path, name: str) -> Path:
    """``base/name``, else the same file name in one of DL3DV's image folders (images_2, images_4, ...)."""
    path = base / name
    if path.exists():
        return path
    for folder in IMAGE_DIRS:
        candidate = base / folder / Path(name).name
        if candidate.exists():
            return candidate
    raise FileNotFoundError(f"image {name} not found under {base} (nor in {', '.join(IMAGE_DIRS)})")


def image_size(path: Path) -> tuple[int, int]:
    import cv2

    image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if image is None:
        raise ValueError(f"cannot read image {path}")
    return int(image.shape[0]), int(image.shape[1])


def _to_file_size(k: np.ndarray, described_hw: tuple[int, int], images: list[Path]
                  ) -> tuple[np.ndarray, tuple[int, int]]:
    """Intrinsics of a ``described_hw`` frame -> those of the image files actually present (a plain resize)."""
    file_hw = image_size(images[0])
    if file_hw == described_hw:
        return k, file_hw
    return rescale_intrinsics(k, described_hw, file_hw), file_hw


def _distortion(coeffs: list[float]) -> np.ndarray | None:
    arr = np.asarray(coeffs, np.float64)
    return arr if np.any(np.abs(arr) > 1e-12) else None


_NS_SUPPORTED = ("OPENCV", "PINHOLE", "SIMPLE_PINHOLE", "")


def read_nerfstudio(path: Path, with_images: bool = True) -> CameraTrack:
    """A nerfstudio ``transforms.json`` (top-level intrinsics, per-frame overrides allowed). ``with_images=False``:
    cameras only (for a video's frames), in file order, intrinsics of the described ``w`` x ``h``."""
    data = json.loads(Path(path).read_text())
    model = str(data.get("camera_model", "OPENCV")).upper()
    if model not in _NS_SUPPORTED:
        raise ValueError(f"{path}: camera_model {model} is not supported (pinhole/OPENCV only)")
    frames = list(data.get("frames") or [])
    if with_images:
        frames.sort(key=lambda f: str(f.get("file_path", "")))
    if not frames:
        raise ValueError(f"{path}: no frames")

    def value(frame: dict, key: str, default: float | None = None) -> float:
        got = frame.get(key, data.get(key, default))
        if got is None:
            raise ValueError(f"{path}: '{key}' missing")
        return float(got)

    base = Path(path).parent
    images = [find_image(base, str(f["file_path"])) for f in frames] if with_images else []
    described = (int(value(frames[0], "h")), int(value(frames[0], "w")))
    k = np.array([[[value(f, "fl_x"), 0.0, value(f, "cx")], [0.0, value(f, "fl_y"), value(f, "cy")], [0.0, 0.0, 1.0]]
                  for f in frames])
    k, file_hw = corner_to_centre_intrinsics(k), described
    if with_images:
        k, file_hw = _to_file_size(k, described, images)
    c2w = opengl_to_opencv(np.array([np.asarray(f["transform_matrix"], np.float64).reshape(4, 4) for f in frames]))
    dist = _distortion([value(frames[0], key, 0.0) for key in ("k1", "k2", "p1", "p2", "k3")])
    depth = None
    if all("depth_file_path" in f for f in frames):
        depth = [base / str(f["depth_file_path"]) for f in frames]
    fps = data.get("fps")
    return CameraTrack(images, c2w, k, file_hw, dist, float(fps) if fps else None, depth,
                       float(data.get("depth_unit_scale_factor", 1e-3)), "nerfstudio")


_COLMAP_DISTORTION = {  # model -> (index of the coefficients in params, their OpenCV slots k1,k2,p1,p2,k3)
    "PINHOLE": ((), ()), "SIMPLE_PINHOLE": ((), ()), "SIMPLE_RADIAL": ((3,), (0,)),
    "RADIAL": ((3, 4), (0, 1)), "OPENCV": ((4, 5, 6, 7), (0, 1, 2, 3)),
}


def read_colmap(model_dir: Path, image_root: Path) -> CameraTrack:
    """A COLMAP sparse model (text or binary, read with pycolmap); images looked up under ``image_root``."""
    import pycolmap

    recon = pycolmap.Reconstruction(str(model_dir))
    entries = sorted(recon.images.values(), key=lambda im: im.name)
    if not entries:
        raise ValueError(f"{model_dir}: the COLMAP model has no registered image")
    images, w2c, ks, dists = [], [], [], []
    for image in entries:
        camera = recon.cameras[image.camera_id]
        model = camera.model.name
        if model not in _COLMAP_DISTORTION:
            raise ValueError(f"{model_dir}: camera model {model} is not supported")
        pose = image.cam_from_world() if callable(image.cam_from_world) else image.cam_from_world
        images.append(find_image(image_root, image.name))
        w2c.append(pose.matrix())
        ks.append(np.asarray(camera.calibration_matrix(), np.float64))
        coeffs = np.zeros(5)
        src, dst = _COLMAP_DISTORTION[model]
        coeffs[list(dst)] = np.asarray(camera.params, np.float64)[list(src)]
        dists.append(coeffs)
        described = (int(camera.height), int(camera.width))
    if any(not np.allclose(d, dists[0]) for d in dists):
        raise ValueError(f"{model_dir}: frames with different lens distortion are not supported")
    k, file_hw = _to_file_size(corner_to_centre_intrinsics(np.array(ks)), described, images)
    return CameraTrack(images, invert_pose(np.array(w2c)), k, file_hw, _distortion(list(dists[0])), None, None,
                       format="colmap")
