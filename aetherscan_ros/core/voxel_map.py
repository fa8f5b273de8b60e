# Copyright 2026 The AetherScan ROS Authors
# SPDX-License-Identifier: Apache-2.0
"""
A bounded voxel map with per-voxel colour, confidence and observation count (numpy only).

Points are hashed into cubic voxels of edge ``voxel_size`` on a grid anchored at the map
origin (so voxels of different updates line up). A voxel keeps running sums: position,
colour and confidence, and the number of points that fell into it (``count``); what it
reports is the mean position, the rounded mean colour, the mean confidence and the count.

Storage is three aligned arrays sorted by the int64 voxel key (21 bits per axis: +-2^20
voxels around the origin, e.g. +-10 km at 1 cm): the keys, the ``[M, 8]`` float64 sums (x y
z, r g b, confidence, count) and the changed flags, 73 bytes per voxel. An update computes
the keys of its points, sums them per key (one ``argsort`` + ``np.bincount``), adds the sums
to the voxels it finds (``np.searchsorted``) and merges the others in in key order (one
boolean mask per update, no sort): N points into a map of M voxels cost O(N log N + M).

Bounded memory: ``radius`` (> 0) drops voxels farther than that from the newest camera
centre; ``max_points`` (> 0) then evicts voxels until that many remain: the farthest from
the camera first when a centre is given (ties: fewer observations first), otherwise the
fewest observations first (ties: lowest confidence first).

``take_changes()`` returns the voxels created or changed since the last call (the delta the
node streams on ``~/points``) and how many were removed meanwhile.
"""

from dataclasses import dataclass
from typing import Optional, Tuple

import numpy as np

from aetherscan_ros.cloud.arrays import as_cloud, CloudArrays

_BITS = 21
_OFFSET = 1 << (_BITS - 1)
_MASK = (1 << _BITS) - 1


@dataclass(frozen=True)
class FuseStats:
    """What one :meth:`VoxelMap.fuse` did (counts of voxels and points)."""

    added: int          # new voxels
    updated: int        # existing voxels that received points
    removed: int        # voxels evicted by the bounds after the update
    points_in: int      # points given
    points_used: int    # finite points inside the key range
    map_points: int     # voxels in the map afterwards


class VoxelMap:
    """
    Voxel hashing map (see the module docstring). Not thread-safe: the caller locks.

    Parameters
    ----------
    voxel_size : float
        Voxel edge in the map's unit (> 0).
    max_points : int
        Most voxels kept (0 = no limit).
    radius : float
        Voxels farther than this from the camera centre given to :meth:`fuse` are dropped
        (0 = no limit).

    """

    def __init__(self, voxel_size: float, max_points: int = 0, radius: float = 0.0):
        if not (voxel_size > 0 and np.isfinite(voxel_size)):
            raise ValueError(f'voxel_size must be a positive finite size, got {voxel_size!r}')
        if max_points < 0 or radius < 0:
            raise ValueError(f'max_points and radius must be >= 0, got {max_points}, {radius}')
        self.voxel_size = float(voxel_size)
        self.max_points = int(max_points)
        self.radius = float(radius)
        self.out_of_range = 0  # points outside the key range, over the map's life
        self.clear()

    def clear(self):
        """Remove every voxel (the changes since the last :meth:`take_changes` too)."""
        self._keys = np.zeros(0, np.int64)
        # per voxel: sums of x y z, of r g b, of confidence, and the points observed (exact in
        # float64 up to 2^53): one array, so an update merges one block instead of four
        self._sums = np.zeros((0, 8), np.float64)
        self._dirty = np.zeros(0, bool)
        self._removed = 0

    def __len__(self) -> int:
        """Return the number of voxels (points of the map)."""
        return int(self._keys.shape[0])

    @property
    def nbytes(self) -> int:
        """Return the bytes held by the map's arrays."""
        return int(self._keys.nbytes + self._sums.nbytes + self._dirty.nbytes)

    def keys_of(self, points: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        """Return ``(keys [K] int64, valid [N] bool)`` of the finite, in-range ``points``."""
        pts = np.asarray(points, np.float64).reshape(-1, 3)
        cells = np.floor(pts * (1.0 / self.voxel_size))
        with np.errstate(invalid='ignore'):   # NaN and inf compare False: not valid
            inside = np.abs(cells) < _OFFSET - 1
        valid = inside[:, 0] & inside[:, 1] & inside[:, 2]
        cells = cells[valid].astype(np.int64) + _OFFSET
        keys = (cells[:, 0] << (2 * _BITS)) | (cells[:, 1] << _BITS) | cells[:, 2]
        return keys, valid

    def fuse(self, points, colors, confidence=None,
             centre: Optional[np.ndarray] = None) -> FuseStats:
        """
        Add points ``[N, 3]`` with colours ``[N, 3]`` uint8 and confidence ``[N]`` (or 1).

        ``centre`` ``[3]``: the newest camera centre, for the ``radius`` bound and eviction.
        """
        cloud = as_cloud(points, colors, 1.0 if confidence is None else confidence, 0)
        keys, valid = self.keys_of(cloud.points)
        self.out_of_range += int((~valid).sum() - (~np.isfinite(cloud.points).all(1)).sum())
        n_in, n = len(cloud), int(valid.sum())
        if n == 0:
            removed = self._bound(centre)
            return FuseStats(0, 0, removed, n_in, 0, len(self))
        pts = np.asarray(cloud.points, np.float64)[valid]
        order = np.argsort(keys)
        skey = keys[order]
        first = np.empty(n, bool)
        first[0] = True
        np.not_equal(skey[1:], skey[:-1], out=first[1:])
        ukeys = skey[first]
        inverse = np.empty(n, np.intp)
        inverse[order] = np.cumsum(first) - 1
        m = len(ukeys)

        def sums(values):
            return np.bincount(inverse, weights=values, minlength=m)

        col = np.asarray(cloud.colors)[valid]
        add = np.empty((m, 8))
        for k in range(3):
            add[:, k] = sums(pts[:, k])
            add[:, 3 + k] = sums(col[:, k].astype(np.float64))
        add[:, 6] = sums(np.asarray(cloud.confidence, np.float64)[valid])
        add[:, 7] = np.bincount(inverse, minlength=m)

        at = np.searchsorted(self._keys, ukeys)
        found = at < len(self._keys)
        found[found] = self._keys[at[found]] == ukeys[found]
        idx = at[found]
        self._sums[idx] += add[found]
        self._dirty[idx] = True
        new = ~found
        if new.any():   # merge the new voxels in key order: one mask, no sort
            ins = at[new]
            is_new = np.zeros(len(self._keys) + len(ins), bool)
            is_new[ins + np.arange(len(ins))] = True
            for name, values in (('_keys', ukeys[new]), ('_sums', add[new]),
                                 ('_dirty', True)):
                old = getattr(self, name)
                merged = np.empty((len(is_new),) + old.shape[1:], old.dtype)
                merged[~is_new] = old
                merged[is_new] = values
                setattr(self, name, merged)
        removed = self._bound(centre)
        return FuseStats(int(new.sum()), int(found.sum()), removed, n_in, n, len(self))

    def _bound(self, centre: Optional[np.ndarray]) -> int:
        """Apply ``radius`` and ``max_points``; return how many voxels were removed."""
        m = len(self)
        dist = None
        over = self.max_points and m > self.max_points
        if centre is not None and m and (self.radius > 0 or over):
            dist = np.linalg.norm(self.means() - np.asarray(centre, np.float64), axis=1)
        keep = np.ones(m, bool)
        if self.radius > 0 and dist is not None:
            keep &= dist <= self.radius
        if self.max_points and int(keep.sum()) > self.max_points:
            cand = np.flatnonzero(keep)
            if dist is not None:   # farthest first, then fewest observations
                order = np.lexsort((self._sums[cand, 7], -dist[cand]))
            else:                  # fewest observations first, then lowest confidence
                order = np.lexsort((self._sums[cand, 6] / self._sums[cand, 7],
                                    self._sums[cand, 7]))
            keep[cand[order[:len(cand) - self.max_points]]] = False
        removed = int(m - keep.sum())
        if removed:
            for name in ('_keys', '_sums', '_dirty'):
                setattr(self, name, getattr(self, name)[keep])
            self._removed += removed
        return removed

    def means(self) -> np.ndarray:
        """Return the mean position of every voxel ``[M, 3]`` float64."""
        return self._sums[:, :3] / self._sums[:, 7:8]

    def cloud(self, select=None) -> CloudArrays:
        """
        Return the map (or the voxels ``select`` picks) as a :class:`CloudArrays`.

        ``points`` mean positions (float32), ``colors`` rounded mean colours, ``confidence``
        mean confidences; the fourth array (``view`` elsewhere) is the observation count,
        clipped to 65535 (uint16).
        """
        sel = slice(None) if select is None else select
        sums = self._sums[sel]
        count = sums[:, 7]
        pts = (sums[:, :3] / count[:, None]).astype(np.float32)
        col = np.floor(sums[:, 3:6] / count[:, None] + 0.5).clip(0, 255).astype(np.uint8)
        conf = (sums[:, 6] / count).astype(np.float32)
        return CloudArrays(pts, col, conf, np.minimum(count, 65535).astype(np.uint16))

    @property
    def counts(self) -> np.ndarray:
        """Return the observation count of every voxel ``[M]`` (a copy)."""
        return self._sums[:, 7].astype(np.int64)

    def pending_changes(self) -> int:
        """Return how many voxels changed since the last :meth:`take_changes`."""
        return int(self._dirty.sum())

    def take_changes(self) -> Tuple[CloudArrays, int]:
        """Return ``(voxels created or changed, voxels removed)`` since the last call."""
        changed = self.cloud(np.flatnonzero(self._dirty))
        removed = self._removed
        self._dirty[:] = False
        self._removed = 0
        return changed, removed
