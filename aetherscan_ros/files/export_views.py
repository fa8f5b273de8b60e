# Copyright 2026 The AetherScan ROS Authors
# SPDX-License-Identifier: Apache-2.0
"""
What the COLMAP and nerfstudio exports share: the views, their image files, pixel centres.

Exported views are the registered ones (finite pose and K). Their RGB images are written once,
as ``images/view_NNNN.png`` beside ``cloud.ply``; both exports reference those files. The
images must be the ones the result's intrinsics describe (the undistorted pinhole images the
backend saw), one per view, of the view's ``image_sizes``.

Pixel coordinates: this package (OpenCV, ROS ``image_geometry``) puts pixel centres at integer
coordinates; COLMAP and nerfstudio put the image's top-left corner at 0, so a pixel centre is
at ``index + 0.5``. :data:`CORNER_OFFSET` is added to principal points and 2D observations.
"""

from pathlib import Path
from typing import List, Optional, Sequence

import numpy as np

from aetherscan_ros.backends.base import ReconstructionResult
from aetherscan_ros.files.atomic import atomic_write_bytes, PathLike

IMAGES_DIR = 'images'
CORNER_OFFSET = 0.5  # COLMAP/nerfstudio pixel coordinates = OpenCV/ROS ones + 0.5


class ExportError(ValueError):
    """An export cannot be written from this result; the message says which view and why."""


def registered_views(result: ReconstructionResult) -> List[int]:
    """Return the views with a finite pose and K (the others are not exported)."""
    return [v for v in range(result.num_views)
            if np.all(np.isfinite(result.poses_c2w[v])) and
            np.all(np.isfinite(result.intrinsics[v]))]


def image_file_name(view: int) -> str:
    """Return the file name of view ``view``'s image in ``images/``."""
    return f'view_{int(view):04d}.png'


def check_images(result: ReconstructionResult, images: Optional[Sequence[np.ndarray]],
                 what: str) -> Sequence[np.ndarray]:
    """
    Return ``images`` after checking one ``[H, W, 3]`` uint8 image per view of the right size.

    Raises :class:`ExportError` naming the export (``what``), the view and the reason.
    """
    if images is None:
        raise ExportError(f'{what} needs the images of the views, and none were given')
    if len(images) != result.num_views:
        raise ExportError(f'{what}: {len(images)} images for {result.num_views} views')
    for view, image in enumerate(images):
        image = np.asarray(image)
        want = (int(result.image_sizes[view][1]), int(result.image_sizes[view][0]), 3)
        if image.dtype != np.uint8 or image.shape != want:
            raise ExportError(f'{what}: the image of view {view} is {image.dtype} '
                              f'{image.shape}, expected uint8 {want} (the image the '
                              'intrinsics are for)')
    return images


def write_images(result: ReconstructionResult, images: Sequence[np.ndarray],
                 out_dir: PathLike) -> List[Path]:
    """
    Write the registered views' RGB images as ``out_dir/images/view_NNNN.png`` (atomically).

    Returns the written paths. Raises :class:`ExportError` for missing or mis-sized images.
    """
    import cv2
    check_images(result, images, 'the image export')
    folder = Path(out_dir) / IMAGES_DIR
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for view in registered_views(result):
        bgr = cv2.cvtColor(np.ascontiguousarray(images[view]), cv2.COLOR_RGB2BGR)
        ok, data = cv2.imencode('.png', bgr, [cv2.IMWRITE_PNG_COMPRESSION, 1])
        if not ok:  # pragma: no cover - OpenCV encodes any uint8 RGB image
            raise ExportError(f'cannot encode the image of view {view} as PNG')
        paths.append(atomic_write_bytes(folder / image_file_name(view), data.tobytes()))
    return paths


__all__ = ['CORNER_OFFSET', 'ExportError', 'IMAGES_DIR', 'check_images', 'image_file_name',
           'registered_views', 'write_images']
