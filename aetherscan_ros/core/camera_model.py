# Copyright 2026 The AetherScan ROS Authors
# SPDX-License-Identifier: Apache-2.0
"""
Camera models from ``sensor_msgs/CameraInfo`` as ``image_geometry`` reads them, and undistortion.

:class:`CameraModel` holds the CameraInfo fields that matter, validated, ROS-free (the ``ros/``
layer hands the message's values to :meth:`CameraModel.from_fields`). The semantics follow
``image_geometry.PinholeCameraModel`` (and REP 104):

* ``K``, ``R``, ``P`` and ``width``/``height`` describe the camera at full sensor resolution.
  The image actually received may be binned and/or cut to ``roi``; its intrinsics are
  :attr:`CameraModel.K_eff` / :attr:`CameraModel.P_eff`: the principal point moved by the ROI
  offset, then focal lengths, principal point (and ``P``'s ``Tx``/``Ty``) divided by the
  binning. Binning 0 means 1 and an all-zero ROI means the full image, as in image_geometry.
* A *raw* topic (``image_raw``) is described by ``K`` + ``D``; ``R`` and ``P`` say how
  ``image_proc`` rectifies it. A *rectified* topic (``image_rect``) is a pinhole image with
  intrinsics ``P[:, :3]`` and no distortion: :meth:`CameraModel.for_rectified_image`.
* Distortion models: ``plumb_bob`` (5 coefficients), ``rational_polynomial`` (8) and
  ``equidistant`` (fisheye, 4); an empty model, an empty ``D`` or an all-zero ``D`` mean none.

Undistortion (images and points) is :mod:`aetherscan_ros.core.undistortion`; the calibration
YAML files are :mod:`aetherscan_ros.core.calibration_file`.
"""

from dataclasses import dataclass
import functools
from typing import Any, Optional, Sequence, Tuple

import numpy as np

#: Number of coefficients in ``D`` for each distortion model CameraInfo names.
DISTORTION_COEFFICIENTS = {'plumb_bob': 5, 'rational_polynomial': 8, 'equidistant': 4}
#: Spellings of "no distortion".
NO_DISTORTION = ('', 'none')
# Orthonormality tolerance for R: calibration files print ~8 significant digits.
_ROTATION_TOLERANCE = 1e-4


class CameraModelError(ValueError):
    """A camera model that cannot be used; ``field`` names the CameraInfo field at fault."""

    def __init__(self, message: str, field: str = ''):
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class Roi:
    """``sensor_msgs/RegionOfInterest`` in full-resolution pixels; all zeros = full image."""

    x_offset: int = 0
    y_offset: int = 0
    width: int = 0
    height: int = 0
    do_rectify: bool = False

    @property
    def is_full(self) -> bool:
        """Return True for the all-zero ROI, which image_geometry reads as the full image."""
        return self.x_offset == self.y_offset == self.width == self.height == 0


def _as_roi(value: Any) -> Roi:
    """Return a :class:`Roi` from a Roi, a 4/5-tuple or anything with the message's attributes."""
    if value is None:
        return Roi()
    if isinstance(value, Roi):
        return value
    if isinstance(value, (tuple, list)):
        if len(value) not in (4, 5):
            raise CameraModelError(f'roi needs (x_offset, y_offset, width, height[, do_rectify]), '
                                   f'got {len(value)} values', 'roi')
        return Roi(*(int(v) for v in value[:4]), bool(value[4]) if len(value) == 5 else False)
    try:
        return Roi(int(value.x_offset), int(value.y_offset), int(value.width),
                   int(value.height), bool(getattr(value, 'do_rectify', False)))
    except AttributeError as exc:
        raise CameraModelError(f'roi of type {type(value).__name__} has no {exc.name}',
                               'roi') from None


def _matrix(value: Any, shape: Tuple[int, int], name: str) -> np.ndarray:
    """Return ``value`` as a finite float64 array of ``shape`` (flat input is reshaped)."""
    try:
        arr = np.asarray(value, np.float64)
    except (TypeError, ValueError):
        raise CameraModelError(f'{name} is not numeric', name) from None
    if arr.size != shape[0] * shape[1]:
        raise CameraModelError(f'{name} has {arr.size} values, expected '
                               f'{shape[0] * shape[1]} ({shape[0]}x{shape[1]})', name)
    if not np.all(np.isfinite(arr)):
        raise CameraModelError(f'{name} contains NaN or infinity', name)
    return arr.reshape(shape)


def _check_focal(mat: np.ndarray, name: str) -> None:
    """Raise unless ``mat`` ``[3, 3+]`` has positive focal lengths and a ``[0, 0, 1]`` last row."""
    if mat[0, 0] <= 0 or mat[1, 1] <= 0:
        raise CameraModelError(f'{name} has non-positive focal lengths fx={mat[0, 0]:g}, '
                               f'fy={mat[1, 1]:g} (an uncalibrated camera?)', name)
    if mat[1, 0] != 0 or np.any(mat[2, :2] != 0) or abs(mat[2, 2] - 1.0) > 1e-9:
        raise CameraModelError(f'{name} is not a pinhole matrix '
                               '[[fx, s, cx], [0, fy, cy], [0, 0, 1]]', name)


def frozen_array(arr: np.ndarray) -> np.ndarray:
    """Return a read-only float64 copy of ``arr``."""
    arr = np.array(arr, np.float64)
    arr.setflags(write=False)
    return arr


@dataclass(frozen=True, eq=False)
class CameraModel:
    """
    A camera as one ``sensor_msgs/CameraInfo`` describes it (validated, immutable, hashable).

    Attributes
    ----------
    width, height : int
        Full-resolution calibration size (0 x 0 = unknown, as some drivers send).
    distortion_model : str
        ``plumb_bob``, ``rational_polynomial``, ``equidistant`` or ``''`` (no distortion).
    D : Tuple[float, ...]
        Distortion coefficients; empty when there is no distortion model.
    K : np.ndarray
        ``[3, 3]`` raw-image intrinsics at full resolution (read-only).
    R : np.ndarray
        ``[3, 3]`` rectification rotation; ``None`` or all zeros are read as identity.
    P : np.ndarray
        ``[3, 4]`` rectified projection; ``None`` or all zeros are read as ``[K | 0]``.
    binning_x, binning_y : int
        Binning of the received image (0 = 1).
    roi : Roi
        Region of interest in full-resolution pixels (a 4/5-tuple is accepted).
    camera_name : str
        Name from a calibration file (not part of the geometry).

    """

    width: int
    height: int
    distortion_model: str
    D: Tuple[float, ...]
    K: np.ndarray
    R: Optional[np.ndarray] = None
    P: Optional[np.ndarray] = None
    binning_x: int = 1
    binning_y: int = 1
    roi: Roi = Roi()
    camera_name: str = ''

    def __post_init__(self) -> None:
        put = functools.partial(object.__setattr__, self)
        for name in ('width', 'height', 'binning_x', 'binning_y'):
            value = getattr(self, name)
            if isinstance(value, float) and not np.isfinite(value):
                raise CameraModelError(f'{name} is {value}', name)
            if int(value) != value or int(value) < 0:
                raise CameraModelError(f'{name} must be a non-negative integer, got {value}', name)
            put(name, max(int(value), 1) if name.startswith('binning') else int(value))
        model = str(self.distortion_model).strip().lower()
        model = '' if model in NO_DISTORTION else model
        if model and model not in DISTORTION_COEFFICIENTS:
            raise CameraModelError(
                f'unknown distortion_model {self.distortion_model!r}: expected one of '
                f'{", ".join(DISTORTION_COEFFICIENTS)} or empty (no distortion)',
                'distortion_model')
        d = np.asarray(self.D if self.D is not None else (), np.float64).reshape(-1)
        if not np.all(np.isfinite(d)):
            raise CameraModelError('D contains NaN or infinity', 'D')
        if not model and np.any(d != 0):
            raise CameraModelError(f'D has non-zero coefficients {d.tolist()} but no '
                                   'distortion_model', 'D')
        if model and d.size and d.size != DISTORTION_COEFFICIENTS[model]:
            raise CameraModelError(f'distortion_model {model} needs '
                                   f'{DISTORTION_COEFFICIENTS[model]} coefficients in D, got '
                                   f'{d.size}', 'D')
        put('distortion_model', model)
        put('D', tuple(float(v) for v in d) if model else ())
        k = _matrix(self.K, (3, 3), 'K')
        _check_focal(k, 'K')
        r = np.eye(3) if self.R is None else _matrix(self.R, (3, 3), 'R')
        if not np.any(r):
            r = np.eye(3)
        if (np.abs(r @ r.T - np.eye(3)).max() > _ROTATION_TOLERANCE
                or np.linalg.det(r) < 0):
            raise CameraModelError('R is not a rotation matrix', 'R')
        p = np.zeros((3, 4)) if self.P is None else _matrix(self.P, (3, 4), 'P')
        if not np.any(p):
            p[:, :3] = k
        _check_focal(p, 'P')
        put('K', frozen_array(k))
        put('R', frozen_array(r))
        put('P', frozen_array(p))
        roi = _as_roi(self.roi)
        if min(roi.x_offset, roi.y_offset, roi.width, roi.height) < 0:
            raise CameraModelError(f'roi has negative values {roi}', 'roi')
        if not roi.is_full and (roi.width == 0 or roi.height == 0):
            raise CameraModelError(f'roi has an offset but zero size {roi}', 'roi')
        if (not roi.is_full and self.width and self.height
                and (roi.x_offset + roi.width > self.width
                     or roi.y_offset + roi.height > self.height)):
            raise CameraModelError(f'roi {roi} reaches outside the {self.width}x{self.height} '
                                   'image', 'roi')
        put('roi', roi)
        put('camera_name', str(self.camera_name or ''))
        put('_key', (self.width, self.height, model, self.D, tuple(self.K.ravel()),
                     tuple(self.R.ravel()), tuple(self.P.ravel()), self.binning_x,
                     self.binning_y, roi.x_offset, roi.y_offset, roi.width, roi.height))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, CameraModel):
            return NotImplemented
        return self._key == other._key and self.camera_name == other.camera_name

    def __hash__(self) -> int:
        return hash(self._key)

    @classmethod
    def from_fields(cls, width: int, height: int, distortion_model: str, d: Sequence[float],
                    k: Sequence[float], r: Sequence[float] = (), p: Sequence[float] = (),
                    binning_x: int = 0, binning_y: int = 0, roi: Any = None,
                    camera_name: str = '') -> 'CameraModel':
        """
        Build a model from CameraInfo's field values as plain Python/numpy.

        ``k``/``r`` hold 9 values and ``p`` 12, flat (as in the message) or shaped; empty or
        all-zero ``r``/``p`` are read as identity / ``[K | 0]``. ``roi`` is a :class:`Roi`, a
        ``(x_offset, y_offset, width, height[, do_rectify])`` tuple or an object with those
        attributes (a ``RegionOfInterest`` message). Raises :class:`CameraModelError`.
        """
        r_arr = np.asarray(r, np.float64)
        p_arr = np.asarray(p, np.float64)
        return cls(width=width, height=height, distortion_model=distortion_model,
                   D=tuple(np.asarray(d, np.float64).reshape(-1)), K=k,
                   R=r_arr if r_arr.size else None, P=p_arr if p_arr.size else None,
                   binning_x=binning_x, binning_y=binning_y, roi=_as_roi(roi),
                   camera_name=camera_name)

    @classmethod
    def pinhole(cls, k: Any, width: int = 0, height: int = 0) -> 'CameraModel':
        """Return a distortion-free model with intrinsics ``k`` ``[3, 3]``."""
        return cls(width=width, height=height, distortion_model='', D=(), K=k)

    @property
    def has_distortion(self) -> bool:
        """Return True when a distortion model is set and some coefficient is non-zero."""
        return bool(self.distortion_model) and any(v != 0.0 for v in self.D)

    @property
    def is_fisheye(self) -> bool:
        """Return True for the ``equidistant`` (Kannala-Brandt fisheye) model."""
        return self.distortion_model == 'equidistant'

    @property
    def image_size(self) -> Tuple[int, int]:
        """``(width, height)`` of the image received: ROI (or full) size over binning."""
        width, height = ((self.width, self.height) if self.roi.is_full
                         else (self.roi.width, self.roi.height))
        return width // self.binning_x, height // self.binning_y

    @property
    def K_eff(self) -> np.ndarray:  # noqa: N802 (CameraInfo's name)
        """``[3, 3]`` intrinsics of the received raw image (ROI offset, then binning)."""
        return self._reduce(self.K)

    @property
    def P_eff(self) -> np.ndarray:  # noqa: N802 (CameraInfo's name)
        """``[3, 4]`` projection for the received image's rectified pixels."""
        return self._reduce(self.P)

    def _reduce(self, mat: np.ndarray) -> np.ndarray:
        out = np.array(mat, np.float64)
        out[0, 2] -= self.roi.x_offset
        out[1, 2] -= self.roi.y_offset
        out[0] /= self.binning_x  # fx, skew, cx (and P's Tx)
        out[1] /= self.binning_y  # fy, cy (and P's Ty)
        return out

    def for_rectified_image(self) -> 'CameraModel':
        """Return the model of this camera's rectified topic: pinhole, ``K = P[:, :3]``."""
        return CameraModel(width=self.width, height=self.height, distortion_model='', D=(),
                           K=self.P[:, :3], R=None, P=self.P, binning_x=self.binning_x,
                           binning_y=self.binning_y, roi=self.roi, camera_name=self.camera_name)
