# Copyright 2026 The AetherScan ROS Authors
# SPDX-License-Identifier: Apache-2.0
"""
Which dense method each view gets, plane-sweep depth maps, and their cross-view check.

Per registered view (:func:`plan_dense`): rectified StereoSGBM (:mod:`.dense`) when the view
has enough partners that rectify well (baseline across the viewing direction, 1.5 to 40
degrees of triangulation angle: the orbit case, where SGBM is the more accurate of the two);
otherwise the multi-view plane sweep (:mod:`.plane_sweep`), whose partners need only overlap
and some parallax (forward motion, narrow baselines); otherwise none (the view keeps its sparse
points). ``mode`` forces one method for every view (``'sgbm'``, ``'sweep'``) or lets each view
choose (``'auto'``).

Plane-sweep depth maps of neighbouring views are checked against each other
(:func:`cross_check`): a pixel's 3D point, projected into a neighbour that has a depth map,
must land where that map's depth agrees within ``tol`` (relative). A pixel is kept when at
least one neighbour confirms it, or when none of its neighbours has a map to ask.
"""

from dataclasses import dataclass, field
from typing import Dict, List, Sequence, Tuple

import numpy as np

from aetherscan_ros.backends.classical.dense import choose_neighbors, DenseOptions
from aetherscan_ros.backends.classical.plane_sweep import (
    decimate, decimated_K, sweep_depth, SweepDepth, SweepOptions)

SGBM = 'sgbm'
SWEEP = 'sweep'
MODES = ('auto', SGBM, SWEEP)
METHOD_NAMES = {SWEEP: 'plane-sweep', SGBM: 'StereoSGBM'}


@dataclass
class DensePlan:
    """Per registered view: ``method[v]`` (``'sgbm'``/``'sweep'``) and its ``neighbors[v]``."""

    method: Dict[int, str] = field(default_factory=dict)
    neighbors: Dict[int, List[int]] = field(default_factory=dict)

    def views(self, method: str) -> List[int]:
        """Return the views planned for ``method``, in increasing order."""
        return sorted(v for v, m in self.method.items() if m == method)


def _median_depth(view: int, poses: np.ndarray, points: np.ndarray,
                  observers: Sequence[np.ndarray]) -> np.ndarray:
    """Return the z-depths ``[P]`` (positive) of the sparse points seen by ``view``."""
    idx = observers[view]
    if not len(idx):
        return np.zeros(0)
    z = ((points[idx] - poses[view, :3, 3]) @ poses[view, :3, :3])[:, 2]
    return z[z > 0]


def sweep_neighbors(poses: np.ndarray, registered: np.ndarray, points: np.ndarray,
                    observers: Sequence[np.ndarray],
                    opts: SweepOptions) -> Dict[int, List[int]]:
    """
    Return, per registered view, up to ``opts.num_neighbors`` plane-sweep partners.

    Any baseline direction will do (forward motion included); a partner must share sparse
    tracks, look within ``max_view_angle_deg`` and give a triangulation angle (baseline seen at
    the view's median depth) in ``[min_tri_angle_deg, max_tri_angle_deg]``. Wider angles score
    higher up to 10 degrees (depth precision), times the shared tracks (overlap).
    """
    out: Dict[int, List[int]] = {}
    views = np.flatnonzero(registered)
    for i in views:
        z = _median_depth(i, poses, points, observers)
        depth = float(np.median(z)) if len(z) else 1.0
        scored = []
        for j in views:
            if j == i:
                continue
            b = float(np.linalg.norm(poses[j, :3, 3] - poses[i, :3, 3]))
            if b <= 1e-9:
                continue
            angle = float(np.degrees(2.0 * np.arctan2(b / 2.0, depth)))
            cos_view = float(np.clip(poses[i, :3, 2] @ poses[j, :3, 2], -1.0, 1.0))
            if not opts.min_tri_angle_deg <= angle <= opts.max_tri_angle_deg:
                continue
            if np.degrees(np.arccos(cos_view)) > opts.max_view_angle_deg:
                continue
            shared = len(np.intersect1d(observers[i], observers[j], assume_unique=True))
            if shared >= 8:
                scored.append((shared * min(1.0, angle / 10.0), int(j)))
        scored.sort(reverse=True)
        out[int(i)] = [j for _, j in scored[:opts.num_neighbors]]
    return out


def plan_dense(poses: np.ndarray, registered: np.ndarray, points: np.ndarray,
               observers: Sequence[np.ndarray], dense_opts: DenseOptions,
               sweep_opts: SweepOptions, mode: str = 'auto') -> DensePlan:
    """Choose each registered view's dense method and partners (see the module docstring)."""
    if mode not in MODES:
        raise ValueError(f'dense mode must be one of {", ".join(MODES)}, got {mode!r}')
    rect = choose_neighbors(poses, registered, points, observers, dense_opts)
    sweep = sweep_neighbors(poses, registered, points, observers, sweep_opts)
    # SGBM is preferred where a view has as many rectifiable partners as asked (or as exist)
    need = max(1, min(dense_opts.num_neighbors, int(registered.sum()) - 1))
    plan = DensePlan()
    for v in np.flatnonzero(registered):
        v = int(v)
        if mode == SGBM or (mode == 'auto' and len(rect.get(v, [])) >= need):
            choice = (SGBM, rect.get(v, []))
        else:
            choice = (SWEEP, sweep.get(v, []))
        if mode == 'auto' and not choice[1]:
            choice = (SGBM, rect.get(v, []))
        if choice[1]:
            plan.method[v], plan.neighbors[v] = choice
    return plan


def depth_range(view: int, poses: np.ndarray, points: np.ndarray,
                observers: Sequence[np.ndarray]) -> Tuple[float, float]:
    """Return ``(near, far)`` z-depths covering the sparse points seen by ``view``, padded."""
    z = _median_depth(view, poses, points, observers)
    if len(z) < 8:
        z = np.concatenate([z, [1.0]]) if len(z) else np.array([1.0])
        return float(z.min()) * 0.3, float(z.max()) * 5.0
    return float(np.percentile(z, 1)) * 0.7, float(np.percentile(z, 99)) * 1.5


def sweep_views(views: Sequence[int], neighbors: Dict[int, List[int]],
                images: Sequence[np.ndarray], Ks: Sequence[np.ndarray], poses: np.ndarray,
                points: np.ndarray, observers: Sequence[np.ndarray], stride: int,
                opts: SweepOptions, report=None) -> Dict[int, SweepDepth]:
    """
    Plane-sweep every view of ``views`` against its neighbours; return the depth maps.

    ``images``/``Ks`` are at the working resolution; the sweep runs on them decimated by
    ``stride`` (:func:`~.plane_sweep.decimate`). ``report(done, total)`` follows progress.
    """
    grey: Dict[int, np.ndarray] = {}

    def small(v: int) -> np.ndarray:
        if v not in grey:
            grey[v] = decimate(images[v], stride)
        return grey[v]

    out: Dict[int, SweepDepth] = {}
    for n, v in enumerate(views):
        nbrs = neighbors[v]
        out[v] = sweep_depth(small(v), decimated_K(Ks[v], stride), poses[v],
                             [small(j) for j in nbrs], [decimated_K(Ks[j], stride) for j in nbrs],
                             [poses[j] for j in nbrs],
                             depth_range(v, poses, points, observers), opts)
        if report is not None:
            report(n + 1, len(views))
    return out


def cross_check(view: int, maps: Dict[int, SweepDepth], neighbors: Sequence[int],
                Ks: Dict[int, np.ndarray], poses: np.ndarray, tol: float) -> np.ndarray:
    """
    Return a ``[H, W]`` bool mask of ``view``'s depths that a neighbour's depth map confirms.

    ``Ks`` are the sweep-resolution intrinsics per view. Pixels with no neighbour map to ask
    are kept (their photometric checks stand alone).
    """
    depth = maps[view].depth
    h, w = depth.shape
    valid = np.isfinite(depth)
    asked = [j for j in neighbors if j in maps]
    if not asked:
        return valid
    rows, cols = np.nonzero(valid)
    z = depth[rows, cols].astype(np.float64)
    K = Ks[view]
    cam = np.stack([(cols - K[0, 2]) / K[0, 0] * z, (rows - K[1, 2]) / K[1, 1] * z, z], -1)
    world = cam @ poses[view, :3, :3].T + poses[view, :3, 3]
    confirmed = np.zeros(len(z), bool)
    for j in asked:
        other = maps[j].depth
        pj = (world - poses[j, :3, 3]) @ poses[j, :3, :3]
        zj = pj[:, 2]
        Kj = Ks[j]
        with np.errstate(divide='ignore', invalid='ignore'):
            u = np.round(pj[:, 0] / zj * Kj[0, 0] + Kj[0, 2])
            v = np.round(pj[:, 1] / zj * Kj[1, 1] + Kj[1, 2])
        inside = (zj > 0) & (u >= 0) & (u < other.shape[1]) & (v >= 0) & (v < other.shape[0])
        found = np.full(len(z), np.nan)
        found[inside] = other[v[inside].astype(np.int64), u[inside].astype(np.int64)]
        with np.errstate(invalid='ignore'):
            confirmed |= np.abs(found - zj) <= tol * zj
    out = np.zeros((h, w), bool)
    out[rows[confirmed], cols[confirmed]] = True
    return out


def sweep_points(view: int, maps: Dict[int, SweepDepth], keep: np.ndarray,
                 image: np.ndarray, K: np.ndarray, pose: np.ndarray,
                 stride: int) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """
    Return ``(points [N, 3] float32, colors [N, 3] uint8, quality [N] float32)`` of a view.

    Sweep pixel ``(x, y)`` is working pixel ``(stride x, stride y)`` of ``image`` (``K`` its
    working intrinsics). Quality = agreeing neighbours / neighbours * p / (p + 8), with ``p``
    the parallax in working pixels (the SGBM score's disparity, generalised).
    """
    sd = maps[view]
    rows, cols = np.nonzero(keep)
    z = sd.depth[rows, cols].astype(np.float64)
    u = cols.astype(np.float64) * stride
    v = rows.astype(np.float64) * stride
    cam = np.stack([(u - K[0, 2]) / K[0, 0] * z, (v - K[1, 2]) / K[1, 1] * z, z], -1)
    world = cam @ pose[:3, :3].T + pose[:3, 3]
    colors = image[rows * stride, cols * stride]
    p = sd.parallax_px[rows, cols].astype(np.float64) * stride
    quality = np.clip(sd.support[rows, cols] / max(sd.neighbours, 1), 0.0, 1.0) * p / (p + 8.0)
    return world.astype(np.float32), colors.astype(np.uint8), quality.astype(np.float32)
