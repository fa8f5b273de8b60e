# Copyright 2026 The AetherScan ROS Authors
# SPDX-License-Identifier: Apache-2.0
"""
A reconstruction as a COLMAP model: ``colmap/`` with cameras, images and points3D (binary).

Written with pycolmap (``Reconstruction.write``), so COLMAP, its GUI and the tools that read
COLMAP models (nerfstudio's ``colmap`` data parser, gsplat, instant-ngp's converter) open it.

* **cameras**: one ``PINHOLE`` camera (fx, fy, cx, cy) per distinct (size, K) of the exported
  views; principal points in COLMAP's convention (image corner at 0: OpenCV cx + 0.5).
* **images**: one per registered view, named ``view_NNNN.png`` (the files of ``images/``
  beside ``colmap/``), ``image_id = view + 1``, ``cam_from_world`` = the inverse of the
  view's camera-to-world pose (optical frames, as in ``poses.json``).
* **points3D**: the cloud's points (at most ``max_points``: an evenly spread subset of a larger
  cloud), with their RGB colour and an honest track: the projection of the point into the view
  it came from, plus every other view that sees it, decided with that view's depth image
  (:func:`aetherscan_ros.core.depth.visible_in_view`: the point projects into the image onto
  that view's own surface, within ``rel_tol`` of its depth). The 2D observations are these
  projections, not detected features, so the reprojection errors COLMAP reports are ~0.

Coordinates and scale are the result's: metres when it is anchored (``info['metric_scale']``).
The directory appears complete or not at all (written aside, then renamed into place).
"""

from dataclasses import dataclass
import os
from pathlib import Path
import secrets
import shutil
from typing import Dict, List, Tuple

import numpy as np

from aetherscan_ros.backends.base import ReconstructionResult
from aetherscan_ros.core.depth import (
    pixel_of, points_by_view, project, render_depth, to_camera, visible_in_view)
from aetherscan_ros.files.atomic import PathLike
from aetherscan_ros.files.export_views import (
    CORNER_OFFSET, ExportError, image_file_name, registered_views)

COLMAP_DIR = 'colmap'
# what a written model holds: an existing colmap/ with anything else is not replaced
MODEL_FILES = frozenset(f'{name}.{ext}' for name in ('cameras', 'images', 'points3D', 'rigs',
                                                     'frames') for ext in ('bin', 'txt'))
MAX_POINTS = 200_000  # points3D written (pycolmap takes ~8 us a point); a sparse model
VISIBILITY_TOL = 0.02  # relative depth agreement for an observation in another view


@dataclass(frozen=True)
class ColmapSummary:
    """What :func:`write_colmap` wrote: the directory and the counts of the model."""

    path: Path
    cameras: int
    images: int
    points: int
    points_in_result: int
    observations: int

    @property
    def mean_track_length(self) -> float:
        return self.observations / self.points if self.points else 0.0


def select_points(result: ReconstructionResult, views: List[int], max_points: int) -> np.ndarray:
    """Return the indices of the finite points of ``views``, evenly thinned to ``max_points``."""
    keep = np.all(np.isfinite(result.points), axis=1) & np.isin(result.view_index, views)
    index = np.flatnonzero(keep)
    if max_points and len(index) > max_points:
        index = index[np.round(np.linspace(0, len(index) - 1, max_points)).astype(np.int64)]
    return index


def observations(result: ReconstructionResult, index: np.ndarray, views: List[int],
                 rel_tol: float = VISIBILITY_TOL) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """
    Return ``(point [M], view [M], uv [M, 2])``: who sees which selected point, and where.

    ``point`` indexes ``index`` (the selected points); ``uv`` are OpenCV pixel coordinates.
    A point's own view always observes it when it projects inside that image; another view
    when :func:`visible_in_view` says so. Sorted by point, then view.
    """
    points = result.points[index].astype(np.float64)
    own = result.view_index[index].astype(np.int64)
    out_point, out_view, out_uv = [], [], []
    per_view = points_by_view(result)
    for view in views:
        pose, K = result.poses_c2w[view], result.intrinsics[view]
        size = (int(result.image_sizes[view][0]), int(result.image_sizes[view][1]))
        mine = own == view
        uv, _ = project(to_camera(points[mine], pose), K)
        _, inside = pixel_of(uv, size)
        seen = np.flatnonzero(mine)[inside]
        others = np.flatnonzero(~mine)
        if len(others) and len(views) > 1:
            depth = render_depth(per_view[view], pose, K, size)
            visible, uv_other = visible_in_view(points[others], pose, K, depth, rel_tol)
            seen = np.concatenate([seen, others[visible]])
            uv = np.concatenate([uv[inside], uv_other[visible]])
        else:
            uv = uv[inside]
        out_point.append(seen)
        out_view.append(np.full(len(seen), view, np.int64))
        out_uv.append(uv)
    point = np.concatenate(out_point) if out_point else np.zeros(0, np.int64)
    view = np.concatenate(out_view) if out_view else np.zeros(0, np.int64)
    uv = np.concatenate(out_uv) if out_uv else np.zeros((0, 2))
    order = np.lexsort((view, point))
    return point[order], view[order], uv[order]


def _camera_ids(result: ReconstructionResult, views: List[int]) -> Dict[int, Tuple[int, tuple]]:
    """Return ``{view: (camera_id, (w, h, fx, fy, cx, cy))}``; equal cameras share an id."""
    ids: Dict[tuple, int] = {}
    out = {}
    for view in views:
        K = result.intrinsics[view]
        if abs(K[0, 1]) > 1e-6 * abs(K[0, 0]):
            raise ExportError(f'COLMAP export: view {view} has a skewed K (s = {K[0, 1]:g}), '
                              'which a PINHOLE camera cannot represent')
        key = (int(result.image_sizes[view][0]), int(result.image_sizes[view][1]),
               float(K[0, 0]), float(K[1, 1]), float(K[0, 2]) + CORNER_OFFSET,
               float(K[1, 2]) + CORNER_OFFSET)
        ids.setdefault(key, len(ids) + 1)
        out[view] = (ids[key], key)
    return out


def build_reconstruction(result: ReconstructionResult, max_points: int = MAX_POINTS,
                         rel_tol: float = VISIBILITY_TOL):
    """Return ``(pycolmap.Reconstruction, points in the result considered)`` for ``result``."""
    from aetherscan_ros.backends.classical.sfm import import_pycolmap
    pycolmap = import_pycolmap()
    views = registered_views(result)
    if not views:
        raise ExportError('COLMAP export: no view has a pose (nothing was registered)')
    recon = pycolmap.Reconstruction()
    cameras = _camera_ids(result, views)
    for camera_id, (width, height, fx, fy, cx, cy) in dict(cameras.values()).items():
        recon.add_camera_with_trivial_rig(pycolmap.Camera(
            model='PINHOLE', width=width, height=height, params=[fx, fy, cx, cy],
            camera_id=camera_id))
    index = select_points(result, views, max_points)
    point, view, uv = observations(result, index, views, rel_tol)
    point2d = np.zeros(len(point), np.int64)  # the observation's index in its image
    for v in views:
        rows = np.flatnonzero(view == v)
        point2d[rows] = np.arange(len(rows))
        cam_from_world = np.linalg.inv(np.asarray(result.poses_c2w[v], np.float64))[:3]
        image = pycolmap.Image(name=image_file_name(v), keypoints=uv[rows] + CORNER_OFFSET,
                               camera_id=cameras[v][0], image_id=v + 1)
        recon.add_image_with_trivial_frame(image, pycolmap.Rigid3d(cam_from_world))
    starts = np.searchsorted(point, np.arange(len(index) + 1))
    xyz = result.points[index].astype(np.float64)
    colors = result.colors[index]
    element = pycolmap.TrackElement
    image_ids = (view + 1).tolist()
    p2d = point2d.tolist()
    for i in range(len(index)):
        first, last = int(starts[i]), int(starts[i + 1])
        if first == last:
            continue  # seen by no view (projects outside its own image): not a COLMAP point
        track = pycolmap.Track([element(image_ids[k], p2d[k]) for k in range(first, last)])
        recon.add_point3D(xyz[i], track, colors[i])
    recon.update_point_3d_errors()
    return recon, int(np.count_nonzero(
        np.all(np.isfinite(result.points), axis=1) & np.isin(result.view_index, views)))


def write_colmap(result: ReconstructionResult, out_dir: PathLike, max_points: int = MAX_POINTS,
                 rel_tol: float = VISIBILITY_TOL, text: bool = False) -> ColmapSummary:
    """
    Write ``out_dir/colmap/`` (COLMAP binary model; ``text``: the ``.txt`` files as well).

    An existing ``colmap/`` is replaced only once the new one is complete, and only when it
    holds nothing but model files (:data:`MODEL_FILES`; a COLMAP project with its database is
    never deleted). Raises :class:`ExportError` when no view is registered, a K cannot be a
    PINHOLE camera or ``colmap/`` holds other files.
    """
    out_dir = Path(out_dir)
    final = out_dir / COLMAP_DIR
    if final.is_symlink() or (final.exists() and not final.is_dir()):
        raise ExportError(f'{final} exists and is not a directory')
    if final.is_dir():
        other = sorted(p.name for p in final.iterdir() if p.name not in MODEL_FILES)
        if other:
            raise ExportError(f'{final} exists and holds more than a COLMAP model '
                              f'({", ".join(other[:3])}): not replaced; choose another '
                              'output directory')
    recon, considered = build_reconstruction(result, max_points, rel_tol)
    tmp = out_dir / f'.{COLMAP_DIR}.{secrets.token_hex(4)}.tmp'
    tmp.mkdir(parents=True)
    old = None
    try:
        recon.write(str(tmp))
        if text:
            recon.write_text(str(tmp))
        if final.exists():
            old = out_dir / f'.{COLMAP_DIR}.{secrets.token_hex(4)}.old'
            os.rename(final, old)
        os.rename(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        if old is not None and not final.exists():
            os.rename(old, final)  # the previous model back in place
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    return ColmapSummary(final, recon.num_cameras(), recon.num_images(), recon.num_points3D(),
                         considered, int(recon.compute_num_observations()))


__all__ = ['COLMAP_DIR', 'ColmapSummary', 'MAX_POINTS', 'VISIBILITY_TOL', 'build_reconstruction',
           'observations', 'select_points', 'write_colmap']
