# Copyright 2026 The AetherScan ROS Authors
# SPDX-License-Identifier: Apache-2.0
"""
Saving and loading a whole reconstruction result: ``cloud.ply`` + ``poses.json``.

A result directory holds ``cloud.ply`` (:mod:`aetherscan_ros.files.ply`), ``poses.json``
(:mod:`aetherscan_ros.files.poses`) and, when rendered, ``preview.png``
(:mod:`aetherscan_ros.files.preview`); each file is written atomically.
"""

import json
import logging
from pathlib import Path
from typing import Optional, Sequence, Tuple

import numpy as np

from aetherscan_ros.backends.base import ReconstructionResult
from aetherscan_ros.files.atomic import atomic_write_text, PathLike
from aetherscan_ros.files.errors import ResultFormatError
from aetherscan_ros.files.ply import read_ply, write_ply
from aetherscan_ros.files.poses import (
    _jsonable, FRAME_DESCRIPTION, poses_document, read_poses_json)

_LOG = logging.getLogger(__name__)

CLOUD_FILE = 'cloud.ply'
POSES_FILE = 'poses.json'
PREVIEW_FILE = 'preview.png'


def finite_subset(result: ReconstructionResult) -> Tuple[ReconstructionResult, int]:
    """Return ``(result without non-finite points, number dropped)``."""
    keep = np.all(np.isfinite(result.points), axis=1)
    dropped = int(keep.size - np.count_nonzero(keep))
    if not dropped:
        return result, 0
    return ReconstructionResult(
        points=result.points[keep], colors=result.colors[keep],
        confidence=result.confidence[keep], view_index=result.view_index[keep],
        poses_c2w=result.poses_c2w, intrinsics=result.intrinsics,
        image_sizes=result.image_sizes, backend=result.backend, timings=result.timings,
        info=result.info), dropped


def save_result(result: ReconstructionResult, out_dir: PathLike,
                image_names: Optional[Sequence[str]] = None) -> Path:
    """
    Write ``out_dir/cloud.ply`` and ``out_dir/poses.json`` (each atomically); return out_dir.

    ``out_dir`` is created if needed. Points with non-finite coordinates are dropped (with a
    warning). ``image_names`` label the views in ``poses.json`` (default ``view_000``...).
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    result, dropped = finite_subset(result)
    if dropped:
        _LOG.warning('dropped %d points with non-finite coordinates before writing %s',
                     dropped, out_dir / CLOUD_FILE)
    doc = poses_document(result, image_names)  # validate before writing anything
    frame = str(result.info.get('world_frame', FRAME_DESCRIPTION))
    comments = [f'backend {result.backend}', 'frame ' + frame.split(';')[0]]
    write_ply(out_dir / CLOUD_FILE, result.points, result.colors, result.confidence,
              result.view_index, comments)
    atomic_write_text(out_dir / POSES_FILE,
                      json.dumps(doc, indent=2, default=_jsonable, allow_nan=False) + '\n')
    return out_dir


def load_result(result_dir: PathLike) -> Tuple[ReconstructionResult, Tuple[str, ...]]:
    """
    Read ``cloud.ply`` + ``poses.json`` from ``result_dir``; return ``(result, names)``.

    Raises :class:`ResultFormatError` naming the missing or malformed file, or when a point's
    view index refers to a view that ``poses.json`` does not have.
    """
    result_dir = Path(result_dir)
    if not result_dir.is_dir():
        raise ResultFormatError(f'{result_dir}: not a directory')
    poses = read_poses_json(result_dir / POSES_FILE)
    cloud = read_ply(result_dir / CLOUD_FILE)
    if cloud.num_points and int(cloud.view_index.max()) >= len(poses.names):
        raise ResultFormatError(f'{result_dir / CLOUD_FILE}: points refer to view '
                                f'{int(cloud.view_index.max())} but {POSES_FILE} has '
                                f'{len(poses.names)} views')
    result = ReconstructionResult(
        points=cloud.points, colors=cloud.colors, confidence=cloud.confidence,
        view_index=cloud.view_index, poses_c2w=poses.poses_c2w, intrinsics=poses.intrinsics,
        image_sizes=poses.image_sizes, backend=poses.backend, timings=dict(poses.timings),
        info=dict(poses.info))
    return result, poses.names


def format_size(num_bytes: float) -> str:
    """Return a human-readable byte count (``'1.5 MB'``)."""
    for unit in ('B', 'kB', 'MB', 'GB'):
        if abs(num_bytes) < 1000 or unit == 'GB':
            return f'{num_bytes:.0f} {unit}' if unit == 'B' else f'{num_bytes:.1f} {unit}'
        num_bytes /= 1000.0
    return f'{num_bytes:.1f} GB'  # pragma: no cover


__all__ = ['CLOUD_FILE', 'POSES_FILE', 'PREVIEW_FILE', 'ResultFormatError', 'finite_subset',
           'format_size', 'load_result', 'save_result']
