# Copyright 2026 The AetherScan ROS Authors
# SPDX-License-Identifier: Apache-2.0
"""Level of detail: voxel downsampling, point budgets, confidence filtering (numpy only)."""

import logging
import math
from typing import Tuple

import numpy as np

from aetherscan_ros.cloud.arrays import as_cloud, CloudArrays

LOG = logging.getLogger(__name__)


def voxel_downsample(points, colors, confidence=None, view=None,
                     voxel: float = 0.01) -> CloudArrays:
    """
    Average points, colors and confidence per cubic voxel of edge ``voxel``.

    Non-finite points are dropped first. Each output point is the mean position, the rounded
    mean color and the mean confidence of the input points in its voxel; its ``view`` is the
    view of the lowest-index point of the voxel. Output order follows the voxel key (sorted).
    Vectorised: one ``argsort`` of the int64 voxel keys, then ``np.bincount`` sums.
    Voxels are anchored at the minimum corner of the cloud.

    Parameters
    ----------
    points, colors, confidence, view
        As in :func:`as_cloud` (``[N, 3]``, ``[N, 3]`` uint8, ``[N]``, ``[N]``).
    voxel : float
        Voxel edge in the unit of ``points`` (> 0).

    Returns
    -------
    CloudArrays with ``M <= N`` points.

    """
    if not voxel > 0 or not math.isfinite(voxel):
        raise ValueError(f'voxel must be a positive finite size, got {voxel!r}')
    cloud = as_cloud(points, colors, confidence, view)
    finite = np.isfinite(cloud.points).all(axis=1)
    if not finite.all():
        cloud = cloud.select(finite)
    n = len(cloud)
    if n == 0:
        return CloudArrays.empty()
    pts = cloud.points
    lo = pts.min(axis=0).astype(np.float64)
    cells = np.floor((pts - lo.astype(np.float32)) * np.float32(1.0 / voxel)).astype(np.int64)
    np.maximum(cells, 0, out=cells)  # float rounding at the minimum corner
    dims = cells.max(axis=0) + 1
    if float(dims[0]) * float(dims[1]) * float(dims[2]) >= 2.0 ** 62:
        raise ValueError(f'voxel {voxel} is too small for the cloud extent '
                         f'({(pts.max(axis=0) - lo).tolist()}): more than 2^62 cells')
    key = (cells[:, 0] * dims[1] + cells[:, 1]) * dims[2] + cells[:, 2]
    del cells
    order = np.argsort(key)
    skey = key[order]
    new_voxel = np.empty(n, bool)
    new_voxel[0] = True
    np.not_equal(skey[1:], skey[:-1], out=new_voxel[1:])
    del skey
    starts = np.flatnonzero(new_voxel)
    m = len(starts)
    inverse = np.empty(n, np.intp)  # voxel number of every input point
    inverse[order] = np.cumsum(new_voxel) - 1
    del new_voxel
    counts = np.bincount(inverse, minlength=m).astype(np.float64)

    def mean(values):  # bincount sums in float64 without gathering the inputs
        return np.bincount(inverse, weights=values, minlength=m) / counts

    mean_p = np.stack([mean(pts[:, k]) for k in range(3)], axis=1).astype(np.float32)
    mean_c = np.stack([np.floor(mean(cloud.colors[:, k]) + 0.5) for k in range(3)],
                      axis=1).astype(np.uint8)
    mean_f = mean(cloud.confidence).astype(np.float32)
    first = np.minimum.reduceat(order, starts)  # lowest input index of every voxel
    return CloudArrays(mean_p, mean_c, mean_f, np.ascontiguousarray(cloud.view[first]))


def point_budget(points, colors, confidence=None, view=None, max_points: int = 1_000_000,
                 max_iterations: int = 8) -> Tuple[CloudArrays, float]:
    """
    Downsample with growing voxels until at most ``max_points`` remain.

    The first voxel guess assumes the points lie on surfaces (count ~ area / voxel^2); further
    steps scale the voxel by ``(count / target) ** (1 / d)`` with the cloud's dimension ``d``
    estimated from the last two steps, until 70-100 % of ``max_points`` remain. When the
    iterations run out the coarsest result is thinned by an even stride (deterministic).

    Returns
    -------
    (cloud, voxel)
        ``voxel`` is 0.0 when the input already fits (returned unchanged, non-finite points
        included).

    """
    max_points = int(max_points)
    if max_points < 1:
        raise ValueError(f'max_points must be >= 1, got {max_points}')
    cloud = as_cloud(points, colors, confidence, view)
    n = len(cloud)
    if n <= max_points:
        return cloud, 0.0
    finite = cloud.points[np.isfinite(cloud.points).all(axis=1)]
    if len(finite) == 0:
        return CloudArrays.empty(), 0.0
    extent = np.sort(finite.max(axis=0) - finite.min(axis=0))[::-1].astype(np.float64)
    area = max(extent[0] * extent[1], extent[0] ** 2 * 1e-6, 1e-18)
    voxel = math.sqrt(area / max_points)
    target = 0.85 * max_points
    best, prev, dim = None, None, 2.0
    for _ in range(max_iterations):
        result = voxel_downsample(*cloud, voxel=voxel)
        m = len(result)
        if m <= max_points and (best is None or len(best[0]) < m):
            best = (result, voxel)
        if max_points >= m >= 0.7 * max_points:
            break
        if prev is not None and prev[1] != m and m > 0 and prev[1] > 0:
            # Local dimension of the cloud: count ~ voxel^-dim (2 = surfaces, 3 = volumes).
            dim = min(max(math.log(prev[1] / m) / math.log(voxel / prev[0]), 1.0), 3.0)
        prev = (voxel, m)
        voxel *= min(max((max(m, 1) / target) ** (1.0 / dim), 0.25), 8.0)
    if best is None:
        step = int(math.ceil(len(result) / max_points))
        best = (result.select(slice(None, None, step)), voxel)
    LOG.debug('point budget %d: %d -> %d points, voxel %.4g', max_points, n, len(best[0]),
              best[1])
    return best


def confidence_filter(confidence, percentile: float, view=None) -> np.ndarray:
    """
    Return a ``[N]`` bool mask keeping points at or above the confidence percentile.

    ``percentile`` in [0, 100): 0 keeps everything finite, 30 drops the lowest 30 %. When
    ``view`` ``[N]`` is given the threshold is computed per view (views with different
    confidence scales keep the same share). NaN confidences are always dropped.
    """
    if not 0.0 <= percentile < 100.0:
        raise ValueError(f'percentile must be in [0, 100), got {percentile}')
    conf = np.asarray(confidence, np.float32).reshape(-1)
    valid = np.isfinite(conf)
    if percentile == 0.0 or conf.size == 0:
        return valid
    if view is None:
        if not valid.any():
            return valid
        threshold = np.percentile(conf[valid], percentile)
        return valid & (conf >= threshold)
    view = np.asarray(view).reshape(-1)
    if view.shape != conf.shape:
        raise ValueError(f'view must be [N] = [{conf.size}], got {view.shape}')
    views, inverse = np.unique(view, return_inverse=True)
    order = np.argsort(inverse, kind='stable')
    bounds = np.searchsorted(inverse[order], np.arange(len(views) + 1))
    thresholds = np.full(len(views), np.inf, np.float32)
    for i in range(len(views)):  # one iteration per view, not per point
        seg = conf[order[bounds[i]:bounds[i + 1]]]
        seg = seg[np.isfinite(seg)]
        if seg.size:
            thresholds[i] = np.percentile(seg, percentile)
    return valid & (conf >= thresholds[inverse])
