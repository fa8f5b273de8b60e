# Copyright 2026 The AetherScan ROS Authors
# SPDX-License-Identifier: Apache-2.0
"""
A reconstruction as a nerfstudio dataset: ``transforms.json`` + ``images/``.

The fields are those of nerfstudio's data conventions (the format of Instant NGP's
``transforms.json``): ``camera_model`` (``OPENCV``, with ``k1 k2 p1 p2`` = 0: the images are
undistorted pinhole images), ``fl_x fl_y cx cy w h`` at the top when every view shares them,
else in each frame, and per frame ``file_path`` (``images/view_NNNN.png``, relative to the
file) and ``transform_matrix``: the 4x4 camera-to-world pose in the OpenGL/Blender camera
convention (x right, y up, z back: the camera looks down -Z), i.e. the optical-frame pose
times ``diag(1, -1, -1, 1)``. Principal points follow nerfstudio's pixel coordinates (a pixel
centre at ``index + 0.5``: OpenCV cx + 0.5). ``ply_file_path`` names the cloud (splatfacto
starts from it) and ``colmap_im_id`` the matching image of the COLMAP export.

World and scale are the result's (metres when anchored, ``info['metric_scale']``); the
``aetherscan`` entry says which (nerfstudio ignores keys it does not know).
"""

import json
from pathlib import Path
from typing import Optional

import numpy as np

from aetherscan_ros.backends.base import ReconstructionResult
from aetherscan_ros.files.atomic import atomic_write_text, PathLike
from aetherscan_ros.files.export_views import (
    CORNER_OFFSET, ExportError, image_file_name, IMAGES_DIR, registered_views)

TRANSFORMS_FILE = 'transforms.json'
# optical (x right, y down, z forward) -> OpenGL (x right, y up, z back) camera axes
OPENCV_TO_OPENGL = np.diag([1.0, -1.0, -1.0, 1.0])
CAMERA_MODEL = 'OPENCV'


def _intrinsics(result: ReconstructionResult, view: int) -> dict:
    K = np.asarray(result.intrinsics[view], np.float64)
    if abs(K[0, 1]) > 1e-6 * abs(K[0, 0]):
        raise ExportError(f'nerfstudio export: view {view} has a skewed K (s = {K[0, 1]:g}), '
                          f'which the {CAMERA_MODEL} camera model cannot represent')
    return {'fl_x': float(K[0, 0]), 'fl_y': float(K[1, 1]),
            'cx': float(K[0, 2]) + CORNER_OFFSET, 'cy': float(K[1, 2]) + CORNER_OFFSET,
            'w': int(result.image_sizes[view][0]), 'h': int(result.image_sizes[view][1])}


def opengl_pose(pose_c2w: np.ndarray) -> np.ndarray:
    """Return a camera-to-world ``[4, 4]`` optical-frame pose with OpenGL camera axes."""
    return np.asarray(pose_c2w, np.float64) @ OPENCV_TO_OPENGL


def transforms_document(result: ReconstructionResult,
                        ply_file: Optional[str] = None) -> dict:
    """
    Return the ``transforms.json`` content of the registered views as a JSON-able dict.

    ``ply_file``: the cloud's path relative to the file (``ply_file_path``), if written.
    Raises :class:`ExportError` when no view is registered or a K is skewed.
    """
    views = registered_views(result)
    if not views:
        raise ExportError('nerfstudio export: no view has a pose (nothing was registered)')
    per_view = {view: _intrinsics(result, view) for view in views}
    shared = all(per_view[view] == per_view[views[0]] for view in views)
    metric = bool(dict(result.info).get('metric_scale', False))
    doc = {'camera_model': CAMERA_MODEL}
    if shared:
        doc.update(per_view[views[0]])
    doc.update(k1=0.0, k2=0.0, p1=0.0, p2=0.0)
    frames = []
    for view in views:
        frame = {'file_path': f'{IMAGES_DIR}/{image_file_name(view)}',
                 'transform_matrix': opengl_pose(result.poses_c2w[view]).tolist(),
                 'colmap_im_id': view + 1}
        if not shared:
            frame.update(per_view[view])
        frames.append(frame)
    doc['frames'] = frames
    if ply_file:
        doc['ply_file_path'] = ply_file
    doc['aetherscan'] = {
        'backend': result.backend, 'views': [int(v) for v in views],
        'units': 'metres' if metric else 'reconstruction units (not metric)',
        'world_frame': str(dict(result.info).get('world_frame', 'optical frame of view 0')),
    }
    return doc


def write_nerfstudio(result: ReconstructionResult, out_dir: PathLike,
                     ply_file: Optional[str] = None) -> Path:
    """Write ``out_dir/transforms.json`` atomically (the images go to ``images/``); return it."""
    doc = transforms_document(result, ply_file)
    path = Path(out_dir) / TRANSFORMS_FILE
    return atomic_write_text(path, json.dumps(doc, indent=2, allow_nan=False) + '\n')


__all__ = ['CAMERA_MODEL', 'OPENCV_TO_OPENGL', 'TRANSFORMS_FILE', 'opengl_pose',
           'transforms_document', 'write_nerfstudio']
