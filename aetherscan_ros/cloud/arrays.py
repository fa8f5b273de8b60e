# Copyright 2026 The AetherScan ROS Authors
# SPDX-License-Identifier: Apache-2.0
"""
A colored cloud as four aligned numpy arrays, and their validation (numpy only, no rclpy).

``points`` ``[N, 3]`` float32, ``colors`` ``[N, 3]`` uint8 RGB, ``confidence`` ``[N]``
float32, ``view`` ``[N]`` uint16.
"""

from typing import Sequence

import numpy as np


class CloudArrays:
    """
    A colored cloud as four aligned arrays; unpacks like a tuple ``p, c, f, v = cloud``.

    Attributes
    ----------
    points : np.ndarray
        ``[N, 3]`` float32 (may be a strided, read-only view into a message buffer).
    colors : np.ndarray
        ``[N, 3]`` uint8 RGB.
    confidence : np.ndarray
        ``[N]`` float32.
    view : np.ndarray
        ``[N]`` uint16, the view each point came from.

    """

    __slots__ = ('points', 'colors', 'confidence', 'view')

    def __init__(self, points, colors, confidence, view):
        self.points = points
        self.colors = colors
        self.confidence = confidence
        self.view = view

    def __iter__(self):
        """Yield ``points, colors, confidence, view``."""
        return iter((self.points, self.colors, self.confidence, self.view))

    def __len__(self):
        """Return the number of points."""
        return int(self.points.shape[0])

    def __repr__(self):
        """Return a short description (number of points)."""
        return f'CloudArrays({len(self)} points)'

    def select(self, index) -> 'CloudArrays':
        """Return the points picked by a boolean mask, an index array or a slice."""
        return CloudArrays(self.points[index], self.colors[index], self.confidence[index],
                           self.view[index])

    def copy(self) -> 'CloudArrays':
        """Return contiguous, writable copies of the four arrays."""
        return CloudArrays(np.ascontiguousarray(self.points).copy(),
                           np.ascontiguousarray(self.colors).copy(),
                           np.ascontiguousarray(self.confidence).copy(),
                           np.ascontiguousarray(self.view).copy())

    @staticmethod
    def empty() -> 'CloudArrays':
        """Return a cloud with zero points."""
        return CloudArrays(np.zeros((0, 3), np.float32), np.zeros((0, 3), np.uint8),
                           np.zeros((0,), np.float32), np.zeros((0,), np.uint16))

    @staticmethod
    def concatenate(clouds: Sequence['CloudArrays']) -> 'CloudArrays':
        """Concatenate clouds in the given order (one copy)."""
        clouds = list(clouds)
        if not clouds:
            return CloudArrays.empty()

        def cat(name, dtype):
            return np.concatenate([getattr(c, name) for c in clouds]).astype(dtype, copy=False)
        return CloudArrays(cat('points', np.float32), cat('colors', np.uint8),
                           cat('confidence', np.float32), cat('view', np.uint16))


def as_cloud(points, colors, confidence=None, view=None) -> CloudArrays:
    """
    Validate and normalise the four arrays without copying when they already fit.

    ``points`` ``[N, 3]`` (any float dtype; cast to float32 only if needed), ``colors``
    ``[N, 3]`` uint8, ``confidence`` ``[N]`` or a scalar (``None`` = 1.0), ``view`` ``[N]`` or
    a scalar view index (``None`` = 0). Scalars are broadcast without allocating.

    Raises
    ------
    ValueError
        naming the argument, its shape/dtype and what was expected.

    """
    points = np.asarray(points)
    if points.ndim != 2 or points.shape[1] != 3:
        raise ValueError(f'points must be [N, 3], got shape {points.shape}')
    if points.dtype.kind != 'f':
        raise ValueError(f'points must be floating point, got {points.dtype}')
    points = points.astype(np.float32, copy=False)
    n = points.shape[0]
    colors = np.asarray(colors)
    if colors.shape != (n, 3):
        raise ValueError(f'colors must be [N, 3] = [{n}, 3] uint8 RGB, got shape {colors.shape}')
    if colors.dtype != np.uint8:
        raise ValueError(f'colors must be uint8 RGB (0..255), got {colors.dtype}')
    if confidence is None:
        confidence = 1.0
    confidence = np.asarray(confidence)
    if confidence.ndim == 0:
        confidence = np.broadcast_to(confidence.astype(np.float32), (n,))
    elif confidence.shape != (n,):
        raise ValueError(f'confidence must be [N] = [{n}] or a scalar, '
                         f'got shape {confidence.shape}')
    confidence = confidence.astype(np.float32, copy=False)
    if view is None:
        view = 0
    view = np.asarray(view)
    if view.ndim == 0:
        if view.dtype.kind not in 'iu' or not 0 <= int(view) <= 0xFFFF:
            raise ValueError(f'view must be an integer in 0..65535, got {view!r}')
        view = np.broadcast_to(view.astype(np.uint16), (n,))
    elif view.shape != (n,):
        raise ValueError(f'view must be [N] = [{n}] or a scalar, got shape {view.shape}')
    elif view.dtype != np.uint16:
        if view.dtype.kind not in 'iu':
            raise ValueError(f'view must be integer, got {view.dtype}')
        if n and (view.min() < 0 or view.max() > 0xFFFF):
            raise ValueError('view indices must fit in uint16 (0..65535)')
        view = view.astype(np.uint16)
    return CloudArrays(points, colors, confidence, view)
