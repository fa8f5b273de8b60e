# Copyright 2026 The AetherScan ROS Authors
# SPDX-License-Identifier: Apache-2.0
"""
Exports beside ``cloud.ply``: a COLMAP model, a nerfstudio dataset, per-view depth images.

``aetherscan reconstruct --export colmap,nerfstudio,depth`` and the node's ``~/save``
(parameter ``save_exports``) call :func:`write_exports` on a result directory:

* ``colmap``: ``colmap/`` (cameras, images, points3D; :mod:`aetherscan_ros.files.colmap`);
* ``nerfstudio``: ``transforms.json`` (:mod:`aetherscan_ros.files.nerfstudio`);
* both reference the views' RGB images, written once as ``images/view_NNNN.png``;
* ``depth``: ``depth/view_NNNN.tiff``, 32-bit float, the view's own points z-buffered at the
  image size (:mod:`aetherscan_ros.core.depth`; NaN = no point; metres when anchored; K and
  size of each view are in ``poses.json``).
"""

from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, List, Optional, Sequence, Tuple

import numpy as np

from aetherscan_ros.backends.base import ReconstructionResult
from aetherscan_ros.core.depth import result_depths
from aetherscan_ros.files.atomic import atomic_write_bytes, PathLike
from aetherscan_ros.files.colmap import write_colmap
from aetherscan_ros.files.export_views import ExportError, image_file_name, write_images
from aetherscan_ros.files.nerfstudio import write_nerfstudio

EXPORT_CHOICES = ('colmap', 'nerfstudio', 'depth')
DEPTH_DIR = 'depth'


@dataclass
class ExportReport:
    """What :func:`write_exports` wrote (top-level paths) and one note per export."""

    paths: List[Path] = field(default_factory=list)
    notes: List[str] = field(default_factory=list)


def parse_exports(values: Iterable[str]) -> Tuple[str, ...]:
    """
    Return the export names of ``values`` (words, each may be comma-separated), in order.

    ``['colmap,nerfstudio', 'depth']`` -> ``('colmap', 'nerfstudio', 'depth')``; duplicates
    and empty words are dropped. Raises :class:`ExportError` naming an unknown export.
    """
    out: List[str] = []
    for value in values:
        for word in str(value).split(','):
            word = word.strip().lower()
            if not word or word in out:
                continue
            if word not in EXPORT_CHOICES:
                raise ExportError(f'unknown export {word!r}: choose from '
                                  f'{", ".join(EXPORT_CHOICES)}')
            out.append(word)
    return tuple(out)


def check_exports(values: Iterable[str]) -> Optional[str]:
    """Return the reason ``values`` are not valid export names, or ``None``."""
    try:
        parse_exports(values)
    except ExportError as exc:
        return str(exc)
    return None


def write_depths(result: ReconstructionResult, out_dir: PathLike) -> Path:
    """Write ``out_dir/depth/view_NNNN.tiff`` (float32, NaN = no point) per registered view."""
    import cv2
    folder = Path(out_dir) / DEPTH_DIR
    folder.mkdir(parents=True, exist_ok=True)
    for item in result_depths(result):
        if item is None:
            continue
        ok, data = cv2.imencode('.tiff', np.ascontiguousarray(item.depth, np.float32))
        if not ok:  # pragma: no cover - OpenCV encodes float32 TIFF
            raise ExportError(f'cannot encode the depth image of view {item.view} as TIFF')
        name = Path(image_file_name(item.view)).with_suffix('.tiff').name
        atomic_write_bytes(folder / name, data.tobytes())
    return folder


def write_exports(result: ReconstructionResult, out_dir: PathLike, kinds: Sequence[str],
                  images: Optional[Sequence[np.ndarray]] = None,
                  ply_file: Optional[str] = 'cloud.ply') -> ExportReport:
    """
    Write the exports ``kinds`` (see :data:`EXPORT_CHOICES`) into ``out_dir``.

    ``images``: the RGB ``[H, W, 3]`` uint8 image of every view (the undistorted images the
    result's K describe); needed for ``nerfstudio``, written for ``colmap`` when given.
    ``ply_file``: the cloud beside them, named in ``transforms.json`` (``None``: not named).
    Raises :class:`ExportError` with the export, the view and the reason.
    """
    kinds = parse_exports(kinds)
    out_dir = Path(out_dir)
    report = ExportReport()
    if not kinds:
        return report
    if 'nerfstudio' in kinds and images is None:
        raise ExportError('the nerfstudio export needs the images of the views, and none were '
                          'given')
    if images is not None and ('colmap' in kinds or 'nerfstudio' in kinds):
        written = write_images(result, images, out_dir)
        report.paths.append(out_dir / 'images')
        report.notes.append(f'images: {len(written)} PNG')
    if 'colmap' in kinds:
        summary = write_colmap(result, out_dir)
        report.paths.append(summary.path)
        report.notes.append(
            f'colmap: {summary.cameras} camera(s), {summary.images} images, {summary.points} '
            f'points3D (of {summary.points_in_result}), mean track length '
            f'{summary.mean_track_length:.2f}')
    if 'nerfstudio' in kinds:
        ply = ply_file if ply_file and (out_dir / ply_file).is_file() else None
        report.paths.append(write_nerfstudio(result, out_dir, ply))
        report.notes.append('nerfstudio: transforms.json')
    if 'depth' in kinds:
        report.paths.append(write_depths(result, out_dir))
        report.notes.append('depth: 32-bit float TIFF per view')
    return report


__all__ = ['DEPTH_DIR', 'EXPORT_CHOICES', 'ExportError', 'ExportReport', 'check_exports',
           'parse_exports', 'write_depths', 'write_exports']
