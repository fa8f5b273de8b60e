# Copyright 2026 The AetherScan ROS Authors
# SPDX-License-Identifier: Apache-2.0
"""
The reconstruction-backend protocol: frames in, a result dataclass out.

Everything here is ROS-free and torch-free. Backends import their heavy dependencies lazily.

Conventions shared by every backend:

* World frame = the optical frame of view 0 (REP-103: x right, y down, z forward), so
  ``poses_c2w[0]`` is (close to) the identity. Scale is metric only when the backend knows it.
* ``intrinsics[i]`` is the 3x3 pinhole K of view i **for the input image size**
  ``image_sizes[i] = (width, height)``, whatever resolution the backend worked at internally.
* ``points`` is the concatenation, in increasing view order, of the :class:`ViewCloud` objects
  the backend reported through ``progress`` while it ran. Consumers that stream per-view chunks
  therefore reassemble exactly ``result.points``.
"""

from dataclasses import dataclass, field
from typing import (
    Callable, Dict, Mapping, Optional, Protocol, runtime_checkable, Sequence, TYPE_CHECKING)

import numpy as np

if TYPE_CHECKING:  # pragma: no cover - annotations only
    from aetherscan_ros.core.camera_model import CameraModel


class ReconstructionError(RuntimeError):
    """The input cannot be reconstructed (too few views, no texture, degenerate motion...)."""


class BackendUnavailable(RuntimeError):
    """A backend cannot run here (missing weights, library or device); the reason says which."""


@dataclass(frozen=True)
class Frame:
    """
    One camera image handed to a backend.

    Attributes
    ----------
    image : np.ndarray
        ``[H, W, 3]`` uint8, RGB order.
    name : str
        Human-readable origin (file name or ``topic@stamp``), used in messages and poses.json.
    stamp_ns : int
        Capture time in nanoseconds (0 when unknown).
    camera : str
        Which camera produced it (topic or file); frames of one camera share intrinsics.
    K : np.ndarray or None
        ``[3, 3]`` float64 intrinsics for this image's size, when known (camera_info).
    frame_id : str
        The image's optical frame (``header.frame_id``), for TF lookups; '' when unknown.
    camera_model : CameraModel or None
        The full calibration of a *raw* image whose lens distortion must still be removed
        (:func:`aetherscan_ros.core.undistortion.undistort_frame` does it before a backend
        runs and then sets ``image`` and ``K`` to the undistorted ones). ``None``: ``image``
        is a pinhole image already.

    """

    image: np.ndarray
    name: str = ''
    stamp_ns: int = 0
    camera: str = ''
    K: Optional[np.ndarray] = None
    camera_model: Optional['CameraModel'] = None
    frame_id: str = ''

    @property
    def size(self):
        """Return ``(width, height)`` in pixels."""
        return int(self.image.shape[1]), int(self.image.shape[0])


@dataclass(frozen=True)
class ViewCloud:
    """
    The points contributed by one view, reported as soon as they are ready.

    ``points`` ``[M, 3]`` float32 in the world frame, ``colors`` ``[M, 3]`` uint8 RGB,
    ``confidence`` ``[M]`` float32 (higher is better; backend-specific scale).
    """

    view: int
    points: np.ndarray
    colors: np.ndarray
    confidence: np.ndarray


@dataclass(frozen=True)
class ProgressEvent:
    """
    Progress of a running reconstruction.

    ``stage`` is a short machine-readable word (``preprocess``, ``forward``, ``poses``,
    ``features``, ``matching``, ``mapping``, ``densify``, ``view_points``, ``done``);
    ``fraction`` in [0, 1] is the overall progress; ``view_cloud`` is set for ``view_points``.
    """

    stage: str
    fraction: float
    message: str = ''
    view_cloud: Optional[ViewCloud] = None


ProgressCallback = Callable[[ProgressEvent], None]


@dataclass(frozen=True)
class ReconstructionResult:
    """
    What a backend returns.

    Attributes
    ----------
    points : np.ndarray
        ``[N, 3]`` float32, world frame (= optical frame of view 0).
    colors : np.ndarray
        ``[N, 3]`` uint8 RGB.
    confidence : np.ndarray
        ``[N]`` float32, higher is better (Fast3R: 1 + exp(c); classical: a quality score).
    view_index : np.ndarray
        ``[N]`` uint16, the view each point came from.
    poses_c2w : np.ndarray
        ``[V, 4, 4]`` float64 camera-to-world transforms, optical frames.
    intrinsics : np.ndarray
        ``[V, 3, 3]`` float64 pinhole K for ``image_sizes``.
    image_sizes : np.ndarray
        ``[V, 2]`` int ``(width, height)`` of the input images.
    backend : str
        Which backend produced the cloud (``fast3r``, ``classical``); shown to users.
    timings : Mapping[str, float]
        Seconds per stage, with ``total``.
    info : Mapping[str, object]
        Free-form facts worth reporting (device, dtype, model label such as
        ``'random weights (not a trained model)'``, registered views, ...). JSON-serialisable.

    """

    points: np.ndarray
    colors: np.ndarray
    confidence: np.ndarray
    view_index: np.ndarray
    poses_c2w: np.ndarray
    intrinsics: np.ndarray
    image_sizes: np.ndarray
    backend: str
    timings: Mapping[str, float] = field(default_factory=dict)
    info: Mapping[str, object] = field(default_factory=dict)

    @property
    def num_views(self) -> int:
        """Return the number of views (poses) in the result."""
        return int(self.poses_c2w.shape[0])

    @property
    def num_points(self) -> int:
        """Return the number of points in the cloud."""
        return int(self.points.shape[0])

    def view_cloud(self, view: int) -> ViewCloud:
        """Return the points of one view as a :class:`ViewCloud`."""
        sel = self.view_index == view
        return ViewCloud(view, self.points[sel], self.colors[sel], self.confidence[sel])


def result_from_view_clouds(
    clouds: Sequence[ViewCloud],
    poses_c2w: np.ndarray,
    intrinsics: np.ndarray,
    image_sizes: np.ndarray,
    backend: str,
    timings: Optional[Dict[str, float]] = None,
    info: Optional[Dict[str, object]] = None,
) -> ReconstructionResult:
    """Concatenate per-view clouds (sorted by view) into a :class:`ReconstructionResult`."""
    clouds = sorted(clouds, key=lambda c: c.view)
    if clouds:
        points = np.concatenate([c.points for c in clouds]).astype(np.float32, copy=False)
        colors = np.concatenate([c.colors for c in clouds]).astype(np.uint8, copy=False)
        conf = np.concatenate([c.confidence for c in clouds]).astype(np.float32, copy=False)
        view_index = np.concatenate(
            [np.full(len(c.points), c.view, np.uint16) for c in clouds])
    else:
        points = np.zeros((0, 3), np.float32)
        colors = np.zeros((0, 3), np.uint8)
        conf = np.zeros((0,), np.float32)
        view_index = np.zeros((0,), np.uint16)
    return ReconstructionResult(
        points=points, colors=colors, confidence=conf, view_index=view_index,
        poses_c2w=np.asarray(poses_c2w, np.float64),
        intrinsics=np.asarray(intrinsics, np.float64),
        image_sizes=np.asarray(image_sizes, np.int64).reshape(-1, 2),
        backend=backend, timings=dict(timings or {}), info=dict(info or {}))


@runtime_checkable
class ReconstructionBackend(Protocol):
    """
    A reconstruction backend.

    ``name`` is what the node reports. ``reconstruct`` must raise :class:`ReconstructionError`
    for input it cannot handle (with a reason naming the offending frame where possible), emit
    one ``view_points`` :class:`ProgressEvent` per view in increasing view order, and never
    mutate the frames.
    """

    name: str

    def reconstruct(self, frames: Sequence[Frame],
                    progress: Optional[ProgressCallback] = None) -> ReconstructionResult:
        """Reconstruct ``frames`` (2 or more) into a colored cloud and per-view poses."""
        ...
