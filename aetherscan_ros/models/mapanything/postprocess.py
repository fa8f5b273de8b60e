# Copyright 2026 The AetherScan ROS Authors
# SPDX-License-Identifier: Apache-2.0
"""
Post-processing of ``infer`` (SPEC §8): intrinsics from rays, poses, validity masks.

The torch parts (:func:`fit_intrinsics`, :func:`poses_from_quats`) run where the outputs are;
the edge masks run in numpy on the host in the outputs' dtype, as upstream does, because its
NaN behaviour (arccos of dot products just above 1 in float32) decides some pixels (SPEC
§13.9). Arrays here are one view: ``[H, W, ...]``.
"""

from typing import Optional

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
import torch

from aetherscan_ros.models.mapanything.priors import quaternion_to_matrix

#: Above this many pixels the pinhole fit uses 5 rays instead of a least-squares grid.
MAX_FIT_PIXELS = 1_000_000


def fit_intrinsics(rays: torch.Tensor) -> torch.Tensor:
    """
    Fit pinhole intrinsics ``[V, 3, 3]`` to unit rays ``[V, H, W, 3]`` (SPEC §8.3).

    Up to 10^6 pixels: least squares of ``u = cx + fx * x/z`` and ``v = cy + fy * y/z`` over
    rows/columns ``0, step, 2 step, ...`` (``step = max(1, side // 50)``), ``u`` = column,
    ``v`` = row index. Larger images: from the rays at a quarter and three quarters of the
    width (height) on the centre row (column).
    """
    views, height, width, _ = rays.shape
    if height * width > MAX_FIT_PIXELS:
        return _fit_sparse(rays)
    sub = rays[:, ::max(1, height // 50), ::max(1, width // 50)]
    a = sub[..., 0] / sub[..., 2]
    b = sub[..., 1] / sub[..., 2]
    cols = torch.arange(0, width, max(1, width // 50), dtype=rays.dtype, device=rays.device)
    rows = torch.arange(0, height, max(1, height // 50), dtype=rays.dtype, device=rays.device)
    fx, cx = _line_fit(a.flatten(1), cols.view(1, 1, -1).expand_as(a).flatten(1))
    fy, cy = _line_fit(b.flatten(1), rows.view(1, -1, 1).expand_as(b).flatten(1))
    return _pinhole(fx, fy, cx, cy)


def _line_fit(x: torch.Tensor, y: torch.Tensor):
    """Least squares ``y = c + f x`` per row of ``[V, N]``; returns ``(f, c)`` ``[V]``."""
    xm, ym = x.mean(-1, keepdim=True), y.mean(-1, keepdim=True)
    slope = ((x - xm) * (y - ym)).sum(-1) / ((x - xm) ** 2).sum(-1)
    return slope, ym[:, 0] - slope * xm[:, 0]


def _fit_sparse(rays: torch.Tensor) -> torch.Tensor:
    _, height, width, _ = rays.shape
    ratio = rays[..., :2] / rays[..., 2:3]
    ch, cw = height // 2, width // 2
    centre = ratio[:, ch, cw]
    dx = ratio[:, ch, 3 * width // 4, 0] - ratio[:, ch, width // 4, 0]
    dy = ratio[:, 3 * height // 4, cw, 1] - ratio[:, height // 4, cw, 1]
    fx = (3 * width // 4 - width // 4) / dx
    fy = (3 * height // 4 - height // 4) / dy
    return _pinhole(fx, fy, cw - fx * centre[:, 0], ch - fy * centre[:, 1])


def _pinhole(fx, fy, cx, cy) -> torch.Tensor:
    k = torch.zeros(fx.shape[0], 3, 3, dtype=fx.dtype, device=fx.device)
    k[:, 0, 0], k[:, 1, 1], k[:, 0, 2], k[:, 1, 2] = fx, fy, cx, cy
    k[:, 2, 2] = 1.0
    return k


def poses_from_quats(quats: torch.Tensor, trans: torch.Tensor) -> torch.Tensor:
    """Return cam->world ``[V, 4, 4]`` from unit quaternions ``[V, 4]`` and ``[V, 3]``."""
    pose = torch.zeros(quats.shape[0], 4, 4, dtype=quats.dtype, device=quats.device)
    pose[:, :3, :3] = quaternion_to_matrix(quats)
    pose[:, :3, 3] = trans
    pose[:, 3, 3] = 1.0
    return pose


# ------------------------------------------------------------------------------------------
# numpy edge masks (one view)

def _windows(x: np.ndarray, pad_mode: str, value=None) -> np.ndarray:
    """Return the 3x3 windows ``[H, W, ..., 3, 3]`` of ``x`` ``[H, W, ...]`` (padded by 1)."""
    widths = [(1, 1), (1, 1)] + [(0, 0)] * (x.ndim - 2)
    if pad_mode == 'constant':
        padded = np.pad(x, widths, mode='constant', constant_values=value)
    else:
        padded = np.pad(x, widths, mode=pad_mode)
    return sliding_window_view(padded, (3, 3), axis=(0, 1))


def nan_max_pool(x: np.ndarray) -> np.ndarray:
    """3x3 max filter of ``[H, W]`` ignoring NaN (NaN padding; an all-NaN window stays NaN)."""
    win = _windows(x, 'constant', np.nan).reshape(*x.shape, 9)
    allnan = np.isnan(win).all(-1)
    out = np.where(np.isnan(win), -np.inf, win).max(-1)
    return np.where(allnan, np.nan, out).astype(x.dtype)


def points_to_normals(points: np.ndarray, mask: np.ndarray):
    """
    Return ``(normals [H, W, 3], normal_mask [H, W])`` of a point map with validity ``mask``.

    Four cross products of neighbour differences (up x left, left x down, down x right,
    right x up), each normalised, summed over the valid ones (both neighbours and the centre
    in ``mask``; zero padding outside), normalised again; invalid normals are 0.
    """
    height, width = mask.shape
    pts = np.zeros((height + 2, width + 2, 3), dtype=points.dtype)
    pts[1:-1, 1:-1] = points
    m = np.zeros((height + 2, width + 2), dtype=bool)
    m[1:-1, 1:-1] = mask
    centre = pts[1:-1, 1:-1]
    up, left = pts[:-2, 1:-1] - centre, pts[1:-1, :-2] - centre
    down, right = pts[2:, 1:-1] - centre, pts[1:-1, 2:] - centre
    normals = np.stack([np.cross(up, left), np.cross(left, down), np.cross(down, right),
                        np.cross(right, up)])
    normals = normals / (np.linalg.norm(normals, axis=-1, keepdims=True) + 1e-12)
    mu, ml, md, mr = m[:-2, 1:-1], m[1:-1, :-2], m[2:, 1:-1], m[1:-1, 2:]
    valid = np.stack([mu & ml, ml & md, md & mr, mr & mu]) & m[None, 1:-1, 1:-1]
    normal = (normals * valid[..., None]).sum(0)
    normal = normal / (np.linalg.norm(normal, axis=-1, keepdims=True) + 1e-12)
    normal_mask = valid.any(0)
    return np.where(normal_mask[..., None], normal, 0).astype(points.dtype), normal_mask


def normals_edge(normals: np.ndarray, normal_mask: np.ndarray, tol_deg: float) -> np.ndarray:
    """
    Return pixels whose 3x3 neighbourhood bends by more than ``tol_deg`` (``[H, W]`` bool).

    Angle to each neighbour in the normal mask (edge-replicated padding), the window maximum
    (a NaN from arccos makes NaN), a NaN-ignoring 3x3 max filter, then ``> tol``.
    """
    n = normals / (np.linalg.norm(normals, axis=-1, keepdims=True) + 1e-12)
    win = _windows(n, 'edge')                        # [H, W, 3, 3, 3]: channel before window
    mwin = _windows(normal_mask, 'edge')             # [H, W, 3, 3]
    dots = (n[..., None, None] * win).sum(axis=-3)   # [H, W, 3, 3]
    with np.errstate(invalid='ignore'):
        angles = np.where(mwin, np.arccos(dots), 0).max(axis=(-2, -1))
        pooled = nan_max_pool(angles.astype(n.dtype))
        return pooled > np.deg2rad(tol_deg)


def depth_edge(depth: np.ndarray, mask: np.ndarray, rtol: float) -> np.ndarray:
    """Return pixels whose masked 3x3 depth range exceeds ``rtol`` times their depth."""
    hi = nan_max_pool(np.where(mask, depth, -np.inf).astype(depth.dtype))
    lo = nan_max_pool(np.where(mask, -depth, -np.inf).astype(depth.dtype))
    with np.errstate(invalid='ignore', divide='ignore'):
        rel = np.nan_to_num((hi + lo) / depth)
    return rel > rtol


def view_mask(non_ambiguous: np.ndarray, conf: np.ndarray, points: np.ndarray,
              depth_z: np.ndarray, mask_edges: bool = True, normal_tol: float = 5.0,
              depth_rtol: float = 0.03, conf_percentile: Optional[float] = None) -> np.ndarray:
    """
    Return the combined validity mask ``[H, W]`` of one view (SPEC §8.6).

    ``non_ambiguous`` ``[H, W]`` bool; ``conf`` ``[H, W]``; ``points`` world points
    ``[H, W, 3]``; ``depth_z`` ``[H, W]`` (unmasked). ``conf_percentile`` (e.g. 10) also drops
    pixels at or below that percentile of the view's confidence.
    """
    m = non_ambiguous.astype(bool).copy()
    if conf_percentile is not None:
        m &= conf > np.quantile(conf, conf_percentile / 100.0)
    if mask_edges and m.any():
        normals, normal_mask = points_to_normals(points, m)
        edges = depth_edge(depth_z, m, depth_rtol)
        edges &= normals_edge(normals, normal_mask, normal_tol)
        m &= ~edges
    return m
