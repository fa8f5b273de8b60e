# Copyright 2026 The AetherScan ROS Authors
# SPDX-License-Identifier: Apache-2.0
"""
Geometric priors as the network sees them: rays, depth along rays, quaternions (pure torch).

Quaternions are ``(x, y, z, w)`` (Hamilton product), poses cam->world in OpenCV axes. Every
function works in the dtype of its inputs, so a float64 call stays float64 (SPEC §3.3, §5).
"""

from typing import Tuple

import torch


def rays_from_intrinsics(intrinsics: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """
    Return unit ray directions ``[B, H, W, 3]`` of pinhole ``intrinsics`` ``[B, 3, 3]``.

    Pixel ``(u, v)`` = (column, row) integer indices (no +0.5): ``((u - cx) / fx,
    (v - cy) / fy, 1)`` divided by its norm.
    """
    k = intrinsics
    u = torch.arange(width, dtype=k.dtype, device=k.device).view(1, 1, width)
    v = torch.arange(height, dtype=k.dtype, device=k.device).view(1, height, 1)
    fx, fy = k[:, 0, 0].view(-1, 1, 1), k[:, 1, 1].view(-1, 1, 1)
    cx, cy = k[:, 0, 2].view(-1, 1, 1), k[:, 1, 2].view(-1, 1, 1)
    x = ((u - cx) / fx).expand(-1, height, width)
    y = ((v - cy) / fy).expand(-1, height, width)
    rays = torch.stack([x, y, torch.ones_like(x)], dim=-1)
    return rays / torch.linalg.norm(rays, dim=-1, keepdim=True)


def normalize_rays(rays: torch.Tensor) -> torch.Tensor:
    """Return ``rays / (|rays| + 1e-8)`` (given ray directions, ``[..., 3]``)."""
    return rays / (torch.linalg.norm(rays, dim=-1, keepdim=True) + 1e-8)


def depth_along_ray(depth_z: torch.Tensor, rays: torch.Tensor) -> torch.Tensor:
    """Convert z-depth ``[B, H, W]`` to range along ``rays`` ``[B, H, W, 3]``: ``[B, H, W, 1]``."""
    scale = torch.linalg.norm(rays / rays[..., 2:3], dim=-1, keepdim=True)
    return depth_z[..., None] * scale


def matrix_to_quaternion(rot: torch.Tensor) -> torch.Tensor:
    """
    Return the unit quaternion ``[..., 4]`` (x, y, z, w with w >= 0) of rotations ``[..., 3, 3]``.

    The robust method: four candidate quaternions, each from one of the diagonal combinations,
    keep the best-conditioned (largest of ``1 + m00 + m11 + m22`` and its three siblings).
    """
    m = rot
    m00, m01, m02 = m[..., 0, 0], m[..., 0, 1], m[..., 0, 2]
    m10, m11, m12 = m[..., 1, 0], m[..., 1, 1], m[..., 1, 2]
    m20, m21, m22 = m[..., 2, 0], m[..., 2, 1], m[..., 2, 2]
    diag = torch.stack([1.0 + m00 + m11 + m22, 1.0 + m00 - m11 - m22,
                        1.0 - m00 + m11 - m22, 1.0 - m00 - m11 + m22], dim=-1)
    root = torch.sqrt(torch.clamp(diag, min=0.0))  # 2|w|, 2|x|, 2|y|, 2|z|
    # rows: candidate from w, x, y, z; columns (w, x, y, z) times 2*root of that row
    cand = torch.stack([
        torch.stack([root[..., 0] ** 2, m21 - m12, m02 - m20, m10 - m01], dim=-1),
        torch.stack([m21 - m12, root[..., 1] ** 2, m10 + m01, m02 + m20], dim=-1),
        torch.stack([m02 - m20, m10 + m01, root[..., 2] ** 2, m12 + m21], dim=-1),
        torch.stack([m10 - m01, m20 + m02, m21 + m12, root[..., 3] ** 2], dim=-1),
    ], dim=-2)
    cand = cand / (2.0 * torch.clamp(root, min=0.1))[..., None]
    best = root.argmax(dim=-1)
    wxyz = torch.gather(cand, -2, best[..., None, None].expand(*best.shape, 1, 4))[..., 0, :]
    wxyz = torch.where(wxyz[..., :1] < 0, -wxyz, wxyz)
    return torch.cat([wxyz[..., 1:], wxyz[..., :1]], dim=-1)


def quaternion_multiply(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Return the Hamilton product ``a * b`` of quaternions ``[..., 4]`` (x, y, z, w)."""
    ax, ay, az, aw = a.unbind(-1)
    bx, by, bz, bw = b.unbind(-1)
    return torch.stack([aw * bx + ax * bw + ay * bz - az * by,
                        aw * by - ax * bz + ay * bw + az * bx,
                        aw * bz + ax * by - ay * bx + az * bw,
                        aw * bw - ax * bx - ay * by - az * bz], dim=-1)


def quaternion_to_matrix(quats: torch.Tensor) -> torch.Tensor:
    """Return the rotation ``[..., 3, 3]`` of quaternions ``[..., 4]`` (normalised first)."""
    q = quats / torch.linalg.norm(quats, dim=-1, keepdim=True)
    x, y, z, w = q.unbind(-1)
    rows = [1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y),
            2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x),
            2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)]
    return torch.stack(rows, dim=-1).reshape(*q.shape[:-1], 3, 3)


def relative_poses(quats: torch.Tensor, trans: torch.Tensor, has_pose: torch.Tensor
                   ) -> Tuple[torch.Tensor, torch.Tensor]:
    """
    Express the poses of V views in the frame of view 0 (SPEC §5.4).

    ``quats`` ``[V, 4]``, ``trans`` ``[V, 3]`` (cam->world), ``has_pose`` ``[V]`` bool. Returns
    ``(q_rel [V, 4], t_rel [V, 3])``; views without a pose get ``(0, 0, 0, 1)`` and zeros.
    """
    q0, t0 = quats[:1], trans[:1]
    inv = torch.cat([-q0[:, :3], q0[:, 3:]], dim=-1) / (q0 * q0).sum(-1, keepdim=True)
    q_rel = quaternion_multiply(inv.expand_as(quats), quats)
    rot = quaternion_to_matrix(inv)[0]
    t_rel = trans @ rot.T - t0 @ rot.T
    ident = torch.zeros_like(q_rel)
    ident[:, 3] = 1.0
    given = has_pose[:, None]
    return torch.where(given, q_rel, ident), torch.where(given, t_rel, torch.zeros_like(t_rel))


def translation_scale(t_rel: torch.Tensor) -> torch.Tensor:
    """
    Return the scene's translation normaliser ``f`` (a 0-d tensor) of ``t_rel`` ``[V, 3]``.

    ``f = sum |t| / (#{|t| > 0} + 1e-8)`` (count + 1e-8 in the working dtype), clipped to
    at least 1e-8.
    """
    norms = torch.linalg.norm(t_rel, dim=-1)
    count = (norms > 0).sum().to(t_rel.dtype)
    return torch.clamp(norms.sum() / (count + 1e-8), min=1e-8)


def depth_scale(depth: torch.Tensor) -> torch.Tensor:
    """
    Return each view's depth normaliser ``n`` ``[V]`` of ``depth`` ``[V, H, W]`` (range).

    ``n = sum of positive depths / (#positive + 1e-8)`` in the working dtype, clipped >= 1e-8.
    """
    valid = depth > 0
    total = torch.where(valid, depth, torch.zeros_like(depth)).flatten(1).sum(-1)
    count = valid.flatten(1).sum(-1).to(depth.dtype)
    return torch.clamp(total / (count + 1e-8), min=1e-8)


def depth_input_map(depth: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """Return the depth encoder input ``[V, 1, H, W]``: ``log1p(d / n)`` where d > 0, else 0."""
    norm = depth / scale.view(-1, 1, 1)
    out = torch.where(norm > 0, torch.log1p(torch.clamp(norm, min=0)), torch.zeros_like(norm))
    return out[:, None]
