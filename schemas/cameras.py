"""Camera conventions shared by the curation pipeline and the training side (ReMind Appendix F.2).

Axes are OpenCV's: x right, y down, z forward (the camera looks along +z). A pose is stored as a 4x4
camera-to-world matrix ``c2w = [[R, t], [0, 0, 0, 1]]``: a point ``X_c`` in camera coordinates lands at
``X_w = R @ X_c + t`` in the world, so ``t`` is the camera centre and the columns of ``R`` are the camera's
axes expressed in the world. World-to-camera is its inverse, ``w2c = [[R^T, -R^T t], [0, 0, 0, 1]]``.

Intrinsics ``K = [[fx, 0, cx], [0, fy, cy], [0, 0, 1]]`` are in pixels of the frame they describe, with
OpenCV's pixel convention: integer coordinates are pixel centres, so the image spans [-0.5, W - 0.5] and an
ideal principal point is ((W - 1) / 2, (H - 1) / 2). A pixel ``(u, v)`` sees ``X_c ~ K^-1 [u, v, 1]^T``.

Stored clips keep raw poses anchored to frame 0 (``c2w_0 = I``) and intrinsics in pixels of the 480x832
frame; the training side normalises translations per clip (``normalise_translations``) and intrinsics by
the image size (``normalised_intrinsics``). Pure numpy: this module imports nothing of ours.
"""
from __future__ import annotations

import numpy as np

_EPS = 1e-9


def _as_4x4(m: np.ndarray) -> np.ndarray:
    """(..., 3, 4) or (..., 4, 4) -> (..., 4, 4) float64 with the homogeneous row [0, 0, 0, 1]."""
    m = np.asarray(m, dtype=np.float64)
    if m.shape[-2:] == (4, 4):
        return m.copy()
    if m.shape[-2:] != (3, 4):
        raise ValueError(f"expected (...,3,4) or (...,4,4) poses, got {m.shape}")
    out = np.zeros(m.shape[:-2] + (4, 4), dtype=np.float64)
    out[..., :3, :] = m
    out[..., 3, 3] = 1.0
    return out


def invert_pose(pose: np.ndarray) -> np.ndarray:
    """Inverse of rigid poses (..., 3|4, 4) -> (..., 4, 4): ``[[R^T, -R^T t], [0, 1]]`` (exact, no matrix solve)."""
    p = _as_4x4(pose)
    rot_t = np.swapaxes(p[..., :3, :3], -1, -2)
    out = np.zeros_like(p)
    out[..., :3, :3] = rot_t
    out[..., :3, 3] = -np.einsum("...ij,...j->...i", rot_t, p[..., :3, 3])
    out[..., 3, 3] = 1.0
    return out


def w2c_to_c2w(w2c: np.ndarray) -> np.ndarray:
    """World-to-camera (N,3,4) or (N,4,4) -> camera-to-world (N,4,4) float64: ``c2w = [[R^T, -R^T t], [0, 1]]``."""
    return invert_pose(w2c)


def anchor_to_first(c2w: np.ndarray) -> np.ndarray:
    """Re-express poses relative to frame 0: ``c2w'_i = inv(c2w_0) @ c2w_i``, so ``c2w'_0 = I``.

    Relative poses ``inv(c2w_i) @ c2w_j`` are unchanged, and so are distances between camera centres.
    """
    p = _as_4x4(c2w)
    if p.ndim != 3 or p.shape[0] == 0:
        raise ValueError(f"expected (N,4,4) poses with N >= 1, got {p.shape}")
    out = np.einsum("ij,njk->nik", invert_pose(p[0]), p)
    out[0] = np.eye(4)
    return out


def centre_crop_box(from_hw: tuple[int, int], aspect_hw: tuple[int, int]) -> tuple[int, int, int, int]:
    """The largest centred (top, left, height, width) box of ``from_hw`` with the aspect ratio of ``aspect_hw``."""
    h, w = from_hw
    ah, aw = aspect_hw
    if w * ah > h * aw:  # source too wide: crop columns
        cw = int(round(h * aw / ah))
        return 0, (w - cw) // 2, h, cw
    ch = int(round(w * ah / aw))
    return (h - ch) // 2, 0, ch, w


def rescale_intrinsics(K: np.ndarray, from_hw: tuple[int, int], to_hw: tuple[int, int],
                       crop: tuple[int, int, int, int] | None = None) -> np.ndarray:
    """Intrinsics (...,3,3) of a ``from_hw`` image -> intrinsics of that image cropped, then resized to ``to_hw``.

    ``crop = (top, left, height, width)`` in ``from_hw`` pixels is applied first: ``cx -= left, cy -= top``, focal
    lengths unchanged (a crop never changes the focal length). The (cropped) image of size (h, w) is then resized
    to ``to_hw = (H, W)`` with ``sx = W / w, sy = H / h``, aligning pixel corners as ``cv2.resize`` does:
    ``fx' = fx * sx, cx' = (cx + 0.5) * sx - 0.5`` (and likewise in y). A plain resize that changes the aspect
    ratio (``crop=None``) gives sx != sy; a centre crop to the target aspect first (``centre_crop_box``) keeps
    ``sx == sy``. The inverse map (processed -> original) is ``rescale_intrinsics(K', to_hw, crop_hw)`` followed by
    adding the crop offset back; see ``uncrop_intrinsics``.
    """
    k = np.array(K, dtype=np.float64)
    h, w = from_hw
    if crop is not None:
        top, left, h, w = crop
        k[..., 0, 2] -= left
        k[..., 1, 2] -= top
    sy, sx = to_hw[0] / h, to_hw[1] / w
    k[..., 0, 0] *= sx
    k[..., 0, 1] *= sx
    k[..., 1, 1] *= sy
    k[..., 0, 2] = (k[..., 0, 2] + 0.5) * sx - 0.5
    k[..., 1, 2] = (k[..., 1, 2] + 0.5) * sy - 0.5
    return k


def uncrop_intrinsics(K: np.ndarray, processed_hw: tuple[int, int],
                      crop: tuple[int, int, int, int]) -> np.ndarray:
    """Inverse of ``rescale_intrinsics(K0, from_hw, processed_hw, crop)``: back to the uncropped source's pixels."""
    top, left, h, w = crop
    k = rescale_intrinsics(K, processed_hw, (h, w))
    k[..., 0, 2] += left
    k[..., 1, 2] += top
    return k


def intrinsics_from_hfov(hfov_deg: float, height: int, width: int) -> np.ndarray:
    """Pinhole K (3,3) with square pixels, horizontal field of view ``hfov_deg`` and the principal point centred.

    ``fx = fy = (W / 2) / tan(hfov / 2)``, ``cx = (W - 1) / 2``, ``cy = (H - 1) / 2``.
    """
    f = (width / 2.0) / np.tan(np.deg2rad(hfov_deg) / 2.0)
    return np.array([[f, 0.0, (width - 1) / 2.0], [0.0, f, (height - 1) / 2.0], [0.0, 0.0, 1.0]])


def hfov_deg(K: np.ndarray, width: int) -> float:
    """Horizontal field of view of intrinsics (3,3): ``2 atan(W / (2 fx))`` in degrees."""
    return float(np.rad2deg(2.0 * np.arctan(width / (2.0 * np.asarray(K)[0, 0]))))


def normalise_translations(c2w: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """Centre and scale a clip's camera centres: ``t'_i = (t_i - c) / s``; rotations untouched.

    ``c = mean_i t_i`` (3,), ``s = max_i |t_i - c|`` so every normalised centre lies in the unit ball; ``s = 1``
    when all centres coincide (|t_i - c| < 1e-6 for all i, e.g. a static or pure-rotation clip). Returns
    ``(c2w_norm (N,4,4) float64, c, s)``; the raw poses are ``t_i = t'_i * s + c``.
    """
    p = _as_4x4(c2w)
    t = p[:, :3, 3]
    centre = t.mean(axis=0)
    radius = float(np.linalg.norm(t - centre, axis=1).max()) if len(t) else 0.0
    scale = radius if radius > 1e-6 else 1.0
    out = p.copy()
    out[:, :3, 3] = (t - centre) / scale
    return out, centre, scale


def normalised_intrinsics(K: np.ndarray, height: int, width: int) -> np.ndarray:
    """Intrinsics (N,3,3) in pixels -> (N,4) ``[fx / W, fy / H, cx / W, cy / H]`` (resolution-free)."""
    k = np.asarray(K, dtype=np.float64).reshape(-1, 3, 3)
    return np.stack([k[:, 0, 0] / width, k[:, 1, 1] / height, k[:, 0, 2] / width, k[:, 1, 2] / height], axis=1)


def rotation_angle_deg(R_a: np.ndarray, R_b: np.ndarray) -> np.ndarray | float:
    """Geodesic angle between rotations (..., 3, 3) in degrees: the angle of ``R_a^T R_b``.

    Computed as ``atan2(|w|, trace - 1)`` with ``w`` the skew part's axis vector (``2 sin(a)`` in norm,
    ``trace - 1 = 2 cos(a)``), which stays accurate for tiny angles where ``arccos`` does not.
    """
    rel = np.einsum("...ji,...jk->...ik", np.asarray(R_a, np.float64), np.asarray(R_b, np.float64))
    w = np.stack([rel[..., 2, 1] - rel[..., 1, 2], rel[..., 0, 2] - rel[..., 2, 0],
                  rel[..., 1, 0] - rel[..., 0, 1]], axis=-1)
    trace = rel[..., 0, 0] + rel[..., 1, 1] + rel[..., 2, 2]
    angle = np.rad2deg(np.arctan2(np.linalg.norm(w, axis=-1), trace - 1.0))
    return float(angle) if np.ndim(angle) == 0 else angle


def is_orthonormal(R: np.ndarray, tol: float = 1e-4) -> bool:
    """True when every (..., 3, 3) matrix is a proper rotation: ``max|R^T R - I| <= tol`` and ``|det R - 1| <= tol``."""
    r = np.asarray(R, dtype=np.float64)
    if r.shape[-2:] != (3, 3) or not np.all(np.isfinite(r)):
        return False
    gram = np.einsum("...ji,...jk->...ik", r, r)
    ortho = np.abs(gram - np.eye(3)).max() <= tol
    return bool(ortho and np.abs(np.linalg.det(r) - 1.0).max() <= tol)


def project_to_rotation(M: np.ndarray) -> np.ndarray:
    """The nearest proper rotation to each (..., 3, 3) matrix in Frobenius norm (SVD, det forced to +1)."""
    u, _, vt = np.linalg.svd(np.asarray(M, dtype=np.float64))
    d = np.where(np.linalg.det(u @ vt) < 0, -1.0, 1.0)
    u = u.copy()
    u[..., :, 2] *= d[..., None]
    return u @ vt
