"""`dl3dv:PATH`: DL3DV-10K scenes (a scene folder, or any folder holding scenes), with their native cameras.

A scene is a folder with the image sequence and its cameras as DL3DV ships them: nerfstudio ``transforms.json``
(in the scene folder or its ``nerfstudio/`` sub-folder) and/or a COLMAP sparse model (``colmap/sparse/0``,
``sparse/0``, text or binary). Images are found by the cameras' file names, also in ``images_2/4/8`` (DL3DV's
downscaled copies; the intrinsics are scaled to the files present). The capture rate comes from the scene
(``fps`` in transforms.json) or from ``sources.dl3dv.capture_fps``; without either the scene fails with a reason.
Depth is read only when every nerfstudio frame names a ``depth_file_path``.
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from schemas.config import Config
from tasks.records import SourceItem
from tasks.sources.camera_files import CameraTrack, read_colmap, read_nerfstudio
from tasks.sources.native import FrameSequence, NativeGeometry, decode_sequence, image_reader

COLMAP_DIRS = ("colmap/sparse/0", "sparse/0", "colmap/sparse", "sparse")
TRANSFORMS = ("transforms.json", "nerfstudio/transforms.json")


def camera_files(scene: Path) -> dict[str, Path]:
    """The camera files of a scene folder: {"nerfstudio": transforms.json, "colmap": model dir} (either may lack)."""
    found: dict[str, Path] = {}
    for name in TRANSFORMS:
        if (scene / name).is_file():
            found["nerfstudio"] = scene / name
            break
    for name in COLMAP_DIRS:
        model = scene / name
        if any((model / f"cameras.{ext}").is_file() for ext in ("txt", "bin")):
            found["colmap"] = model
            break
    return found


def find_scenes(root: Path) -> list[Path]:
    """Scene folders under ``root`` (``root`` itself when it is one), sorted; a scene's sub-folders are not searched."""
    if camera_files(root):
        return [root]
    scenes: list[Path] = []
    for current, dirs, _ in os.walk(root):
        dirs.sort()
        here = Path(current)
        if here != root and camera_files(here):
            scenes.append(here)
            dirs[:] = []
    return scenes


def _fingerprint(files: dict[str, Path]) -> str:
    """Content hash of the camera files: a moved or renamed scene is the same clip."""
    digest = hashlib.sha256()
    for kind, path in sorted(files.items()):
        members = [path] if path.is_file() else sorted(p for p in path.iterdir() if p.is_file())
        for member in members:
            digest.update(kind.encode() + member.name.encode() + member.read_bytes())
    return digest.hexdigest()


def dl3dv_items(path: str, config: Config) -> list[SourceItem]:
    root = Path(path).expanduser()
    if not root.exists():
        raise FileNotFoundError(f"DL3DV folder not found: {path}")
    cfg = config.sources.dl3dv
    items = []
    for scene in find_scenes(root):
        files = camera_files(scene)
        provenance: dict[str, Any] = {"name": scene.name, "dataset": "DL3DV-10K", "license": cfg.license,
                                      "attribution": cfg.attribution, "camera_files": sorted(files)}
        items.append(SourceItem(f"dl3dv-{_fingerprint(files)[:16]}", "dl3dv", str(scene.resolve()),
                                str(scene.resolve()), provenance))
    if not items:
        raise FileNotFoundError(f"no DL3DV scene (transforms.json or a COLMAP model) under {path}")
    return items


def load_track(scene: Path, prefer: str) -> CameraTrack:
    """The scene's cameras: ``prefer`` = auto (nerfstudio when present, else COLMAP), nerfstudio or colmap."""
    files = camera_files(scene)
    kind = prefer if prefer != "auto" else ("nerfstudio" if "nerfstudio" in files else "colmap")
    if kind not in files:
        raise FileNotFoundError(f"{scene}: no {kind} camera file (found: {', '.join(sorted(files)) or 'none'})")
    if kind == "nerfstudio":
        return read_nerfstudio(files["nerfstudio"])
    return read_colmap(files["colmap"], scene)


def _depth_reader(track: CameraTrack):
    if track.depth is None:
        return None
    paths, scale = track.depth, track.depth_scale

    def read(j: int) -> np.ndarray:
        depth = cv2.imread(str(paths[j]), cv2.IMREAD_UNCHANGED)
        if depth is None:
            raise ValueError(f"cannot read depth {paths[j]}")
        return depth.astype(np.float32) * scale

    return read


def track_sequence(track: CameraTrack, capture_fps: float | None) -> FrameSequence:
    if not capture_fps:
        raise ValueError("the capture rate is unknown: the scene records no fps; set sources.dl3dv.capture_fps")
    return FrameSequence(len(track.images), float(capture_fps), image_reader([str(p) for p in track.images]),
                         track.camera_c2w, track.intrinsics, track.image_hw, track.distortion, _depth_reader(track))


def decode_dl3dv(item: SourceItem, config: Config, limit: int | None) -> tuple[np.ndarray, NativeGeometry,
                                                                               dict[str, Any]]:
    """Frames at the pipeline's fps and size, their native cameras, and the source facts for the clip notes."""
    cfg, norm = config.sources.dl3dv, config.normalise
    track = load_track(Path(item.path or item.uri), cfg.cameras)
    capture_fps = track.fps or cfg.capture_fps
    frames, native = decode_sequence(track_sequence(track, capture_fps), norm.fps, norm.height, norm.width, limit,
                                     norm.max_source_seconds)
    facts = {"source_fps": float(capture_fps or 0), "duration_s": len(track.images) / float(capture_fps or 1),
             "codec": f"image sequence ({track.format} cameras)", "source_size": track.image_hw}
    return frames, native, facts
