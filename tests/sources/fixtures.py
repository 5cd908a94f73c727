"""Builders of small datasets in their real on-disk formats, from the synthetic generator's exact truth.

- ``write_dl3dv_scene``: a DL3DV-style scene folder: ``images/frame_00001.png``..., a nerfstudio ``transforms.json``
  (OpenGL camera axes, nerfstudio's world axis swap in ``applied_transform``, COLMAP's corner-origin principal point)
  and/or a COLMAP text model ``colmap/sparse/0/{cameras,images,points3D}.txt`` (world-to-camera quaternions in a
  rotated, shifted and scaled world, as a reconstruction has; the marker points as 3D points with their 2D tracks).
- ``write_openvid``: OpenVid-1M's CSV (its released column names) beside a ``video/`` folder of MP4s.
- ``write_manifest``: a manifest of video rows (CSV, JSONL or Parquet).

The truth stays in the caller's ``SyntheticClip``: what ingest gives back is compared with it.
"""
from __future__ import annotations

import csv
import json
from pathlib import Path

import cv2
import numpy as np

from tasks.sources.synthetic import SyntheticClip

# nerfstudio's ns-process-data world: COLMAP's axes swapped (x, z, -y); recorded as "applied_transform"
NS_WORLD = np.array([[1.0, 0.0, 0.0, 0.0], [0.0, 0.0, 1.0, 0.0], [0.0, -1.0, 0.0, 0.0], [0.0, 0.0, 0.0, 1.0]])
GL_FROM_CV = np.diag([1.0, -1.0, -1.0, 1.0])
OPENVID_COLUMNS = ["video", "caption", "aesthetic score", "motion score", "temporal consistency score",
                   "camera motion", "frame", "fps", "seconds"]


def colmap_world(scale: float = 2.5) -> np.ndarray:
    """A similarity (rotation about a tilted axis, shift, scale): where a reconstruction might put the scene."""
    angle = np.deg2rad(35.0)
    axis = np.array([0.3, 1.0, -0.2]) / np.linalg.norm([0.3, 1.0, -0.2])
    rot, _ = cv2.Rodrigues(axis * angle)
    world = np.eye(4)
    world[:3, :3] = scale * rot
    world[:3, 3] = [1.5, -0.7, 4.0]
    return world


def _quaternion(rot: np.ndarray) -> np.ndarray:
    """Rotation matrix -> unit quaternion (w, x, y, z), COLMAP's order."""
    w = np.sqrt(max(0.0, 1.0 + np.trace(rot))) / 2.0
    if w > 1e-6:
        return np.array([w, (rot[2, 1] - rot[1, 2]) / (4 * w), (rot[0, 2] - rot[2, 0]) / (4 * w),
                         (rot[1, 0] - rot[0, 1]) / (4 * w)])
    i = int(np.argmax(np.diag(rot)))
    j, k = (i + 1) % 3, (i + 2) % 3
    q = np.zeros(4)
    q[i + 1] = np.sqrt(max(0.0, 1.0 + rot[i, i] - rot[j, j] - rot[k, k])) / 2.0
    q[0] = (rot[k, j] - rot[j, k]) / (4 * q[i + 1])
    q[j + 1] = (rot[j, i] + rot[i, j]) / (4 * q[i + 1])
    q[k + 1] = (rot[k, i] + rot[i, k]) / (4 * q[i + 1])
    return q


def write_dl3dv_scene(scene: Path, clip: SyntheticClip, formats: tuple[str, ...] = ("nerfstudio", "colmap"),
                      fps: float | None = None, depth: bool = False) -> Path:
    """Write ``clip`` as a DL3DV scene. ``fps`` goes into transforms.json when given (DL3DV records none)."""
    images = scene / "images"
    images.mkdir(parents=True, exist_ok=True)
    names = [f"frame_{i + 1:05d}.png" for i in range(len(clip.frames))]
    for name, frame in zip(names, clip.frames):
        cv2.imwrite(str(images / name), np.ascontiguousarray(frame[..., ::-1]), [cv2.IMWRITE_PNG_COMPRESSION, 1])
    h, w = clip.frames.shape[1:3]
    k = clip.intrinsics[0].astype(np.float64)
    fx, fy, cx, cy = k[0, 0], k[1, 1], k[0, 2] + 0.5, k[1, 2] + 0.5  # corner origin, as COLMAP/nerfstudio
    if "nerfstudio" in formats:
        frames = []
        for i, name in enumerate(names):
            c2w_gl = NS_WORLD @ clip.camera_c2w[i].astype(np.float64) @ GL_FROM_CV
            entry = {"file_path": f"images/{name}", "transform_matrix": c2w_gl.tolist(), "colmap_im_id": i + 1}
            if depth:
                (scene / "depth").mkdir(exist_ok=True)
                cv2.imwrite(str(scene / "depth" / f"{name}"), np.round(clip.depth[i] * 1000).astype(np.uint16))
                entry["depth_file_path"] = f"depth/{name}"
            frames.append(entry)
        data = {"w": w, "h": h, "fl_x": fx, "fl_y": fy, "cx": cx, "cy": cy, "k1": 0.0, "k2": 0.0, "p1": 0.0,
                "p2": 0.0, "camera_model": "OPENCV", "applied_transform": NS_WORLD[:3].tolist(),
                "frames": frames[::-1]}  # file order is not capture order: the reader sorts by name
        if fps is not None:
            data["fps"] = fps
        (scene / "transforms.json").write_text(json.dumps(data, indent=1))
    if "colmap" in formats:
        _write_colmap(scene / "colmap" / "sparse" / "0", clip, names, (h, w), (fx, fy, cx, cy))
    return scene


def _write_colmap(model: Path, clip: SyntheticClip, names: list[str], hw: tuple[int, int],
                  params: tuple[float, float, float, float]) -> None:
    from tasks.sources.synthetic import project_points

    model.mkdir(parents=True, exist_ok=True)
    world = colmap_world()
    scale = float(np.cbrt(np.linalg.det(world[:3, :3])))
    (model / "cameras.txt").write_text("# Camera list with one line of data per camera:\n"
                                       "#   CAMERA_ID, MODEL, WIDTH, HEIGHT, PARAMS[]\n"
                                       f"1 PINHOLE {hw[1]} {hw[0]} {' '.join(f'{p:.10f}' for p in params)}\n")
    uv = project_points(clip.points_world, clip.camera_c2w, clip.intrinsics) + 0.5  # corner origin
    lines = ["# Image list with two lines of data per image:",
             "#   IMAGE_ID, QW, QX, QY, QZ, TX, TY, TZ, CAMERA_ID, NAME", "#   POINTS2D[] as (X, Y, POINT3D_ID)"]
    tracks: dict[int, list[str]] = {m: [] for m in range(len(clip.points_world))}
    order = np.random.default_rng(0).permutation(len(names))  # image ids not in capture order either
    for image_id, i in enumerate(order, start=1):
        c2w = world @ clip.camera_c2w[i].astype(np.float64)  # scaled rotation in the top-left block
        rot, centre = c2w[:3, :3] / scale, c2w[:3, 3]
        rot_w2c = rot.T
        t_w2c = -rot_w2c @ centre
        q = _quaternion(rot_w2c)
        lines.append(f"{image_id} {' '.join(f'{v:.12f}' for v in q)} {' '.join(f'{v:.12f}' for v in t_w2c)} 1 "
                     f"{names[i]}")
        points = []
        for m, (x, y) in enumerate(uv[i]):
            if np.isfinite(x) and 0 <= x < hw[1] and 0 <= y < hw[0]:
                tracks[m].append(f"{image_id} {len(points)}")
                points.append(f"{x:.4f} {y:.4f} {m + 1}")
        lines.append(" ".join(points))
    (model / "images.txt").write_text("\n".join(lines) + "\n")
    pts = (world[:3, :3] @ clip.points_world.astype(np.float64).T).T + world[:3, 3]
    rows = ["# 3D point list with one line of data per point:",
            "#   POINT3D_ID, X, Y, Z, R, G, B, ERROR, TRACK[] as (IMAGE_ID, POINT2D_IDX)"]
    rows += [f"{m + 1} {p[0]:.10f} {p[1]:.10f} {p[2]:.10f} 20 20 20 0.1 {' '.join(tracks[m])}"
             for m, p in enumerate(pts) if tracks[m]]
    (model / "points3D.txt").write_text("\n".join(rows) + "\n")


def write_openvid(root: Path, rows: list[dict[str, object]]) -> Path:
    """``root/OpenVid-1M.csv`` with OpenVid-1M's columns (values given per row; blanks where absent)."""
    root.mkdir(parents=True, exist_ok=True)
    path = root / "OpenVid-1M.csv"
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=OPENVID_COLUMNS)
        writer.writeheader()
        for row in rows:
            writer.writerow({c: row.get(c, "") for c in OPENVID_COLUMNS})
    return path


def write_manifest(path: Path, rows: list[dict[str, object] | str]) -> Path:
    """A manifest file by suffix: .jsonl (a str row is written verbatim: a broken line), .csv or .parquet."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".jsonl":
        path.write_text("\n".join(r if isinstance(r, str) else json.dumps(r) for r in rows) + "\n")
    elif path.suffix == ".csv":
        columns = sorted({k for r in rows if isinstance(r, dict) for k in r})
        with open(path, "w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=columns)
            writer.writeheader()
            writer.writerows([r for r in rows if isinstance(r, dict)])
    else:
        import pyarrow as pa
        import pyarrow.parquet as pq

        pq.write_table(pa.Table.from_pylist([r for r in rows if isinstance(r, dict)]), path)
    return path
