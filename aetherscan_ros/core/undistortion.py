# Copyright 2026 The AetherScan ROS Authors
# SPDX-License-Identifier: Apache-2.0
"""
Undistortion of images and pixel coordinates for a :class:`~.camera_model.CameraModel`.

:func:`undistort_image` turns a raw image into a pinhole image with OpenCV's remap tables
(``cv2.initUndistortRectifyMap`` for plumb_bob/rational_polynomial,
``cv2.fisheye.initUndistortRectifyMap`` for equidistant), cached per model in a small LRU
because the node calls it for every frame; :func:`undistort_points` maps pixel coordinates the
same way; :func:`undistorted_intrinsics` is the K of the output. Everything works in the
received image's pixels (binning and ROI applied, ``K_eff``): the distortion coefficients act on
normalized coordinates and do not change with binning or ROI.
"""

import functools
import logging
from typing import Optional, Tuple, TYPE_CHECKING

import cv2
import numpy as np

from aetherscan_ros.core.camera_model import CameraModel, CameraModelError, frozen_array

if TYPE_CHECKING:  # pragma: no cover - annotations only
    from aetherscan_ros.backends.base import Frame

LOGGER = logging.getLogger(__name__)

# Iterative undistortion of points: to well below 1e-3 px.
_POINT_CRITERIA = (cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, 100, 1e-12)


def undistorted_intrinsics(model: CameraModel, image_size: Optional[Tuple[int, int]] = None,
                           rectify: bool = False) -> np.ndarray:
    """
    Return the ``[3, 3]`` intrinsics of :func:`undistort_image`'s output for ``model``.

    ``rectify``: ``P_eff[:, :3]`` (image_proc's rectified image). Otherwise, without distortion,
    ``K_eff``; with distortion a new K chosen so the output has no black border: for
    plumb_bob/rational_polynomial ``cv2.getOptimalNewCameraMatrix(alpha=0,
    centerPrincipalPoint=True)`` (only valid pixels; one scale for fx and fy, so square pixels
    stay square, principal point centred). For equidistant: the raw K, zoomed in only as far as
    needed for a border-free image (:func:`_fisheye_intrinsics`), not
    ``cv2.fisheye.estimateNewCameraMatrixForUndistortRectify(balance=0)``: that one inverts the
    model at the edge midpoints, which fails for lenses whose edges lie past ~90 degrees (a
    principal point outside the image for a T265-like lens), and where it works it gives the
    widest border-free view, which for a 160-degree lens squeezes the centre ~5x; a pinhole
    image cannot show such a field of view well, so the centre keeps its resolution instead.
    Black borders would be textureless fake structure to a matcher or a network; the price is
    the outer field of view. ``image_size`` ``(width, height)`` defaults to
    ``model.image_size``.
    """
    if image_size is not None:
        _size(model, image_size)  # checks it against the model
    if rectify:
        return model.P_eff[:, :3]
    if not model.has_distortion:
        return model.K_eff
    return _new_intrinsics(model, _size(model, image_size)).copy()


@functools.lru_cache(maxsize=32)
def _new_intrinsics(model: CameraModel, size: Tuple[int, int]) -> np.ndarray:
    k, d = model.K_eff, np.asarray(model.D, np.float64)
    if model.is_fisheye:
        new = _fisheye_intrinsics(k, d, size)
    else:
        new, _ = cv2.getOptimalNewCameraMatrix(k, d, size, 0.0, size, centerPrincipalPoint=True)
    new = np.asarray(new, np.float64)
    if not np.all(np.isfinite(new)) or new[0, 0] <= 0 or new[1, 1] <= 0:
        raise CameraModelError(f'no valid undistorted camera for {model.distortion_model} '
                               f'D={list(model.D)} at {size[0]}x{size[1]}', 'D')
    return frozen_array(new)


def _fisheye_intrinsics(k: np.ndarray, d: np.ndarray, size: Tuple[int, int]) -> np.ndarray:
    """
    Return ``k`` ``[3, 3]`` with its focal lengths scaled by the least ``s >= 1`` without border.

    Uses only the forward model (``cv2.fisheye.projectPoints``, well defined at any angle
    below 90 degrees): every output border pixel's ray must land inside the raw image.
    """
    width, height = size
    us = np.linspace(0.0, width - 1.0, max(2, width // 8))
    vs = np.linspace(0.0, height - 1.0, max(2, height // 8))
    border = np.r_[np.c_[us, np.zeros_like(us)], np.c_[us, np.full_like(us, height - 1.0)],
                   np.c_[np.zeros_like(vs), vs], np.c_[np.full_like(vs, width - 1.0), vs]]

    def scaled(scale: float) -> np.ndarray:
        out = np.array(k, np.float64)
        out[:2, :2] *= scale
        return out

    def fits(scale: float) -> bool:
        rays = np.linalg.solve(scaled(scale), np.c_[border, np.ones(len(border))].T).T
        raw, _ = cv2.fisheye.projectPoints(rays.reshape(-1, 1, 3), np.zeros(3), np.zeros(3), k, d)
        raw = raw.reshape(-1, 2)
        return bool(np.all((raw >= -0.5) & (raw <= [width - 0.5, height - 0.5])))

    if fits(1.0):
        return scaled(1.0)
    low, high = 1.0, 2.0
    while not fits(high):
        low, high = high, high * 2.0
        if high > 64.0:
            raise CameraModelError(f'equidistant D={d.tolist()}: no border-free pinhole view at '
                                   f'{width}x{height}', 'D')
    for _ in range(30):
        mid = 0.5 * (low + high)
        low, high = (low, mid) if fits(mid) else (mid, high)
    return scaled(high)


def _size(model: CameraModel, image_size: Optional[Tuple[int, int]]) -> Tuple[int, int]:
    if image_size is not None:
        size = (int(image_size[0]), int(image_size[1]))
        expected = model.image_size
        if expected[0] and expected[1] and size != expected:
            raise CameraModelError(
                f'the image is {size[0]}x{size[1]} but camera_info describes '
                f'{expected[0]}x{expected[1]} (full {model.width}x{model.height}, binning '
                f'{model.binning_x}x{model.binning_y}, roi {model.roi.width}x'
                f'{model.roi.height})', 'width')
        return size
    size = model.image_size
    if not (size[0] and size[1]):
        raise CameraModelError('camera_info has no image size (width/height 0)', 'width')
    return size


def _needs_remap(model: CameraModel, rectify: bool) -> bool:
    if model.has_distortion:
        return True
    return rectify and not (np.array_equal(model.R, np.eye(3))
                            and np.array_equal(model.P[:, :3], model.K))


@functools.lru_cache(maxsize=8)
def _remap_tables(model: CameraModel, size: Tuple[int, int],
                  rectify: bool) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return ``(map1, map2, K_out)``: fixed-point remap tables (CV_16SC2, 1/32 px)."""
    k_out = undistorted_intrinsics(model, size, rectify)
    rot = model.R if rectify else np.eye(3)
    d = np.asarray(model.D, np.float64) if model.has_distortion else None
    if model.is_fisheye and d is not None:
        map1, map2 = cv2.fisheye.initUndistortRectifyMap(model.K_eff, d, rot, k_out, size,
                                                         cv2.CV_16SC2)
    else:
        map1, map2 = cv2.initUndistortRectifyMap(model.K_eff, d, rot, k_out, size, cv2.CV_16SC2)
    LOGGER.debug('remap tables for %s %dx%d (rectify=%s)', model.distortion_model or 'pinhole',
                 size[0], size[1], rectify)
    return map1, map2, frozen_array(k_out)


def undistort_image(model: CameraModel, image: np.ndarray, rectify: bool = False,
                    interpolation: int = cv2.INTER_LINEAR) -> Tuple[np.ndarray, np.ndarray]:
    """
    Return ``(pinhole image, K_out [3, 3])`` for a raw ``image`` ``[H, W]`` or ``[H, W, C]``.

    The output has the input's size and dtype. ``rectify=False`` removes the distortion only,
    so the output stays in the camera's optical frame (what TF knows) with
    :func:`undistorted_intrinsics` as ``K_out``; ``rectify=True`` reproduces ``image_proc``'s
    rectified image (``R`` applied, ``K_out = P_eff[:, :3]``). Without distortion (and, with
    ``rectify``, ``R = I`` and ``P[:, :3] = K``) the same ``image`` object comes back with
    ``K_eff``. Remap tables are cached per (model, size, rectify) in a small LRU, so calling
    this per frame costs one :func:`cv2.remap`. For a rectified topic pass
    ``model.for_rectified_image()``. Raises :class:`CameraModelError` when the image size does
    not match the model.
    """
    if image.ndim not in (2, 3):
        raise CameraModelError(f'expected an [H, W] or [H, W, C] image, got shape {image.shape}')
    size = _size(model, (image.shape[1], image.shape[0]))
    if not _needs_remap(model, rectify):
        return image, model.K_eff
    map1, map2, k_out = _remap_tables(model, size, rectify)
    out = cv2.remap(image, map1, map2, interpolation, borderMode=cv2.BORDER_CONSTANT)
    if image.ndim == 3 and out.ndim == 2:
        out = out[:, :, None]
    return out, k_out.copy()


def undistort_points(model: CameraModel, pixels: np.ndarray, normalized: bool = False,
                     rectify: bool = False,
                     image_size: Optional[Tuple[int, int]] = None) -> np.ndarray:
    """
    Map raw pixel coordinates ``[N, 2]`` to undistorted ones ``[N, 2]`` (float64).

    ``normalized=True`` returns ``(x / z, y / z)`` of the viewing ray in the optical frame (in
    the rectified frame with ``rectify``); otherwise pixels of :func:`undistort_image`'s output
    for the same ``rectify`` (``image_size`` as there, default ``model.image_size``). Distortion
    is inverted iteratively to ~1e-12 (``cv2.undistortPointsIter``,
    ``cv2.fisheye.undistortPoints``), not with OpenCV's default 5 iterations.
    """
    pts = np.asarray(pixels, np.float64).reshape(-1, 2)
    if not normalized and not _needs_remap(model, rectify):
        return pts.copy()
    k = model.K_eff
    rot = model.R if rectify else np.eye(3)
    if len(pts) == 0:
        norm = pts.copy()
    elif model.has_distortion:
        d = np.asarray(model.D, np.float64)
        src = np.ascontiguousarray(pts.reshape(-1, 1, 2))
        if model.is_fisheye:
            norm = cv2.fisheye.undistortPoints(src, k, d, R=rot, criteria=_POINT_CRITERIA)
        else:
            norm = cv2.undistortPointsIter(src, k, d, rot, None, _POINT_CRITERIA)
        norm = norm.reshape(-1, 2).astype(np.float64)
    else:
        rays = np.linalg.solve(k, np.c_[pts, np.ones(len(pts))].T).T @ rot.T
        norm = rays[:, :2] / rays[:, 2:3]
    if normalized:
        return norm
    k_out = undistorted_intrinsics(model, image_size, rectify)
    return np.c_[norm, np.ones(len(norm))] @ k_out[:2].T


def undistort_frame(frame: 'Frame') -> 'Frame':
    """
    Return ``frame`` as a pinhole image: distortion removed, ``K`` the undistorted intrinsics.

    A frame without ``camera_model`` comes back unchanged; one whose model has no distortion
    gets ``K = model.K_eff``. The result has ``camera_model=None`` (nothing left to remove).
    Raises :class:`CameraModelError` (naming the frame) when the model does not fit the image.
    """
    from dataclasses import replace
    model = frame.camera_model
    if model is None:
        return frame
    try:
        image, k_out = undistort_image(model, frame.image)
    except CameraModelError as exc:
        raise CameraModelError(f'{frame.name}: {exc}', getattr(exc, 'field', '')) from None
    return replace(frame, image=image, K=np.asarray(k_out, np.float64), camera_model=None)
