# Copyright 2026 The AetherScan ROS Authors
# SPDX-License-Identifier: Apache-2.0
"""
Reading and writing ``poses.json``.

``poses.json`` lists, per input image, its file name, image size, the 3x3 pinhole ``K`` for that
size and the 4x4 ``camera_to_world`` transform (row-major; camera optical frame REP-103:
x right, y down, z forward; world = optical frame of the first camera), plus which backend
produced the result, its ``info`` and ``timings``. The file is written atomically
(:mod:`aetherscan_ros.files.atomic`).
"""

from dataclasses import dataclass
import json
import os
from pathlib import Path
from typing import Mapping, Optional, Sequence, Tuple

import numpy as np

from aetherscan_ros import __version__
from aetherscan_ros.backends.base import ReconstructionResult
from aetherscan_ros.files.atomic import atomic_write_text, PathLike
from aetherscan_ros.files.errors import ResultFormatError

POSES_FORMAT = 'aetherscan_ros/poses'
POSES_VERSION = 1
FRAME_DESCRIPTION = ('world = optical frame of the first camera (REP-103: x right, y down, '
                     'z forward); camera_to_world maps camera optical-frame points to world')


@dataclass(frozen=True)
class PosesFile:
    """
    The content of a ``poses.json``.

    ``names`` per-view file names; ``poses_c2w`` ``[V, 4, 4]`` float64; ``intrinsics``
    ``[V, 3, 3]`` float64; ``image_sizes`` ``[V, 2]`` int64 ``(width, height)``; ``backend``,
    ``info``, ``timings`` as in :class:`ReconstructionResult`; ``num_points`` as written.
    Views written as unregistered (``null`` pose or K) read back as all-NaN matrices.
    """

    names: Tuple[str, ...]
    poses_c2w: np.ndarray
    intrinsics: np.ndarray
    image_sizes: np.ndarray
    backend: str
    info: Mapping[str, object]
    timings: Mapping[str, float]
    num_points: int = 0


def _jsonable(value):
    """Convert numpy scalars/arrays (and anything else unknown) for ``json.dumps``."""
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (Path, os.PathLike)):
        return os.fspath(value)
    return str(value)


def _matrix_or_none(array: np.ndarray):
    """Return a finite matrix as nested lists, or ``None`` when it has any non-finite entry."""
    array = np.asarray(array, np.float64)
    return array.tolist() if np.all(np.isfinite(array)) else None


def poses_document(result: ReconstructionResult,
                   image_names: Optional[Sequence[str]] = None) -> dict:
    """
    Return the ``poses.json`` content for ``result`` as a JSON-able ``dict``.

    ``image_names`` (one per view) default to ``view_000``, ``view_001``... A view whose pose
    is not finite (a backend could not register it) is written with ``"registered": false``
    and ``"camera_to_world": null`` (likewise ``"K": null`` for a non-finite K).
    """
    count = result.num_views
    if image_names is None:
        image_names = [f'view_{i:03d}' for i in range(count)]
    image_names = [str(n) for n in image_names]
    if len(image_names) != count:
        raise ValueError(f'{len(image_names)} image names for a result with {count} views')
    if result.intrinsics.shape != (count, 3, 3) or result.poses_c2w.shape != (count, 4, 4):
        raise ValueError(f'result has poses {result.poses_c2w.shape} and intrinsics '
                         f'{result.intrinsics.shape}, expected [{count}, 4, 4] and '
                         f'[{count}, 3, 3]')
    sizes = np.asarray(result.image_sizes).reshape(-1, 2)
    if sizes.shape[0] != count:
        raise ValueError(f'result has {sizes.shape[0]} image sizes for {count} views')
    views = []
    for i in range(count):
        pose = _matrix_or_none(result.poses_c2w[i])
        views.append({
            'index': i,
            'file': image_names[i],
            'registered': pose is not None,
            'width': int(sizes[i, 0]),
            'height': int(sizes[i, 1]),
            'K': _matrix_or_none(result.intrinsics[i]),
            'camera_to_world': pose,
        })
    return {
        'format': POSES_FORMAT,
        'version': POSES_VERSION,
        'generator': f'aetherscan_ros {__version__}',
        'frame': str(result.info.get('world_frame', FRAME_DESCRIPTION)),
        'backend': str(result.backend),
        'num_views': count,
        'num_points': result.num_points,
        'timings': {str(k): float(v) for k, v in dict(result.timings).items()},
        'info': dict(result.info),
        'views': views,
    }


def write_poses_json(path: PathLike, result: ReconstructionResult,
                     image_names: Optional[Sequence[str]] = None) -> Path:
    """Write ``poses.json`` for ``result`` atomically; return ``path``."""
    text = json.dumps(poses_document(result, image_names), indent=2, default=_jsonable,
                      allow_nan=False)
    return atomic_write_text(path, text + '\n')


def _matrix(path: Path, view: dict, key: str, shape: Tuple[int, int], index: int) -> np.ndarray:
    if key in view and view[key] is None:  # an unregistered view
        return np.full(shape, np.nan)
    try:
        value = np.asarray(view[key], np.float64)
    except KeyError:
        raise ResultFormatError(f'{path}: view {index} has no "{key}"') from None
    except (TypeError, ValueError):
        raise ResultFormatError(f'{path}: view {index} "{key}" is not a numeric matrix') from None
    if value.shape != shape or not np.all(np.isfinite(value)):
        raise ResultFormatError(f'{path}: view {index} "{key}" must be a finite '
                                f'{shape[0]}x{shape[1]} matrix, got shape {value.shape}')
    return value


def read_poses_json(path: PathLike) -> PosesFile:
    """Read and validate a ``poses.json``; raise :class:`ResultFormatError` naming the file."""
    path = Path(path)
    try:
        doc = json.loads(path.read_text(encoding='utf-8'))
    except FileNotFoundError:
        raise ResultFormatError(f'{path}: no such file') from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ResultFormatError(f'{path}: cannot read: {exc}') from None
    except json.JSONDecodeError as exc:
        raise ResultFormatError(f'{path}: not valid JSON ({exc.msg} at line {exc.lineno})') \
            from None
    if not isinstance(doc, dict) or doc.get('format') != POSES_FORMAT:
        raise ResultFormatError(f'{path}: not an aetherscan poses file (format != '
                                f'{POSES_FORMAT!r})')
    if doc.get('version') != POSES_VERSION:
        raise ResultFormatError(f'{path}: poses file version {doc.get("version")!r} is not '
                                f'supported (expected {POSES_VERSION})')
    views = doc.get('views')
    if not isinstance(views, list) or not views:
        raise ResultFormatError(f'{path}: "views" must be a non-empty list')
    names, poses, intrinsics, sizes = [], [], [], []
    for i, view in enumerate(views):
        if not isinstance(view, dict):
            raise ResultFormatError(f'{path}: view {i} is not an object')
        names.append(str(view.get('file', f'view_{i:03d}')))
        poses.append(_matrix(path, view, 'camera_to_world', (4, 4), i))
        intrinsics.append(_matrix(path, view, 'K', (3, 3), i))
        width, height = view.get('width'), view.get('height')
        if not (isinstance(width, int) and isinstance(height, int) and width > 0 and height > 0):
            raise ResultFormatError(f'{path}: view {i} needs positive integer width/height')
        sizes.append((width, height))
    timings = doc.get('timings') or {}
    info = doc.get('info') or {}
    if not isinstance(timings, dict) or not isinstance(info, dict):
        raise ResultFormatError(f'{path}: "timings" and "info" must be objects')
    return PosesFile(
        names=tuple(names), poses_c2w=np.stack(poses), intrinsics=np.stack(intrinsics),
        image_sizes=np.asarray(sizes, np.int64), backend=str(doc.get('backend', '')),
        info=info, timings={str(k): float(v) for k, v in timings.items()
                            if isinstance(v, (int, float))},
        num_points=int(doc.get('num_points', 0) or 0))


__all__ = ['FRAME_DESCRIPTION', 'POSES_FORMAT', 'POSES_VERSION', 'PosesFile',
           'ResultFormatError', 'poses_document', 'read_poses_json', 'write_poses_json']
