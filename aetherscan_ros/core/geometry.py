# Copyright 2026 The AetherScan ROS Authors
# SPDX-License-Identifier: Apache-2.0
"""Small rigid-body helpers shared by the backends, evaluation and the node (numpy only)."""

from typing import Tuple

import numpy as np


def umeyama(src: np.ndarray, dst: np.ndarray,
            with_scale: bool = True) -> Tuple[float, np.ndarray, np.ndarray]:
    """
    Least-squares similarity ``dst ~ s * R @ src + t`` (Umeyama 1991).

    Parameters
    ----------
    src, dst : np.ndarray
        ``[N, 3]`` corresponding points, N >= 3 for a unique rotation.
    with_scale : bool
        Estimate ``s``; otherwise ``s = 1`` (Kabsch).

    Returns
    -------
    (s, R, t) with ``R`` ``[3, 3]`` in SO(3) and ``t`` ``[3]``.

    """
    src = np.asarray(src, np.float64)
    dst = np.asarray(dst, np.float64)
    if src.shape != dst.shape or src.ndim != 2 or src.shape[1] != 3:
        raise ValueError(f'umeyama needs two [N, 3] arrays, got {src.shape} and {dst.shape}')
    mu_s = src.mean(axis=0)
    mu_d = dst.mean(axis=0)
    xs = src - mu_s
    xd = dst - mu_d
    cov = xd.T @ xs / len(src)
    u, d, vt = np.linalg.svd(cov)
    sign = np.ones(3)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        sign[2] = -1.0
    rot = u @ np.diag(sign) @ vt
    if with_scale:
        var_s = (xs ** 2).sum(axis=1).mean()
        scale = float((d * sign).sum() / var_s) if var_s > 0 else 1.0
    else:
        scale = 1.0
    trans = mu_d - scale * rot @ mu_s
    return scale, rot, trans


def invert_pose(pose: np.ndarray) -> np.ndarray:
    """Invert rigid 4x4 transform(s) ``[..., 4, 4]``."""
    pose = np.asarray(pose, np.float64)
    rot = pose[..., :3, :3]
    trans = pose[..., :3, 3]
    out = np.zeros_like(pose)
    rot_t = np.swapaxes(rot, -1, -2)
    out[..., :3, :3] = rot_t
    out[..., :3, 3] = -np.einsum('...ij,...j->...i', rot_t, trans)
    out[..., 3, 3] = 1.0
    return out


def rotation_angle_deg(rot_a: np.ndarray, rot_b: np.ndarray) -> np.ndarray:
    """Geodesic angle in degrees between rotations ``[..., 3, 3]``."""
    rel = np.swapaxes(np.asarray(rot_a), -1, -2) @ np.asarray(rot_b)
    cos = (np.trace(rel, axis1=-2, axis2=-1) - 1.0) / 2.0
    return np.degrees(np.arccos(np.clip(cos, -1.0, 1.0)))


def rotation_matrix_to_quaternion(rot: np.ndarray) -> np.ndarray:
    """Convert ``[..., 3, 3]`` rotation matrices to ``[..., 4]`` quaternions (x, y, z, w)."""
    rot = np.asarray(rot, np.float64)
    m = rot.reshape(-1, 3, 3)
    q = np.empty((len(m), 4))
    tr = np.trace(m, axis1=1, axis2=2)
    for i, (r, t) in enumerate(zip(m, tr)):
        if t > 0:
            s = np.sqrt(t + 1.0) * 2
            q[i] = [(r[2, 1] - r[1, 2]) / s, (r[0, 2] - r[2, 0]) / s,
                    (r[1, 0] - r[0, 1]) / s, 0.25 * s]
        elif r[0, 0] > r[1, 1] and r[0, 0] > r[2, 2]:
            s = np.sqrt(1.0 + r[0, 0] - r[1, 1] - r[2, 2]) * 2
            q[i] = [0.25 * s, (r[0, 1] + r[1, 0]) / s, (r[0, 2] + r[2, 0]) / s,
                    (r[2, 1] - r[1, 2]) / s]
        elif r[1, 1] > r[2, 2]:
            s = np.sqrt(1.0 + r[1, 1] - r[0, 0] - r[2, 2]) * 2
            q[i] = [(r[0, 1] + r[1, 0]) / s, 0.25 * s, (r[1, 2] + r[2, 1]) / s,
                    (r[0, 2] - r[2, 0]) / s]
        else:
            s = np.sqrt(1.0 + r[2, 2] - r[0, 0] - r[1, 1]) * 2
            q[i] = [(r[0, 2] + r[2, 0]) / s, (r[1, 2] + r[2, 1]) / s, 0.25 * s,
                    (r[1, 0] - r[0, 1]) / s]
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    return q.reshape(rot.shape[:-2] + (4,))


def quaternion_to_rotation_matrix(q: np.ndarray) -> np.ndarray:
    """Convert ``[..., 4]`` quaternions (x, y, z, w) to ``[..., 3, 3]`` rotation matrices."""
    q = np.asarray(q, np.float64)
    q = q / np.linalg.norm(q, axis=-1, keepdims=True)
    x, y, z, w = np.moveaxis(q, -1, 0)
    return np.stack([
        np.stack([1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)], -1),
        np.stack([2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)], -1),
        np.stack([2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)], -1),
    ], -2)
