# Copyright 2026 The AetherScan ROS Authors
# SPDX-License-Identifier: Apache-2.0
"""
The ``classical`` backend: a real reconstruction without weights, GPU or torch.

Pipeline, one module per stage:

* :mod:`.sfm`: sparse structure-from-motion with COLMAP (pycolmap): SIFT features, exhaustive
  or sequential matching with geometric verification, incremental mapping with bundle
  adjustment; a direct two-view relative-pose path (LO-RANSAC + OpenCV triangulation) when
  COLMAP's mapper cannot initialise. pycolmap is imported only through
  :func:`.sfm.import_pycolmap` (zlib first), never at module import.
* :mod:`.pairs`: identical views (refused by name, before features or after matching),
  the image pair of the two-view path, and the mapper's first pair when COLMAP's own choice
  would be posed from a homography (forward motion over a floor).
* :mod:`.depth_fusion`: which dense method each view gets (StereoSGBM where its partners
  rectify well, else the plane sweep), the plane-sweep maps' cross-view check, their points.
* :mod:`.dense`: densification from rectified pairs with OpenCV StereoSGBM, fused by
  multi-pair depth consistency.
* :mod:`.plane_sweep`: multi-view plane-sweep depth (NCC over warped neighbours) for forward
  motion (the epipole inside the image) and narrow baselines.
* :mod:`.pipeline`: :class:`ClassicalBackend`, which validates the frames, runs both stages and
  returns the :class:`~aetherscan_ros.backends.base.ReconstructionResult` (result conventions
  in its docstring).

The public names are loaded from :mod:`.pipeline` on first access, so importing
``aetherscan_ros.backends.classical.sfm`` alone does not pull in OpenCV before pycolmap.
Nothing here imports torch.
"""

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover - static analysis only
    from aetherscan_ros.backends.classical.pipeline import (
        ClassicalBackend, MIN_IMAGE_SIDE, SPARSE_ONLY_QUALITY, validate_frames)

__all__ = ['ClassicalBackend', 'MIN_IMAGE_SIDE', 'SPARSE_ONLY_QUALITY', 'validate_frames']


def __getattr__(name: str):
    """Load the public names of :mod:`.pipeline` on first access (PEP 562)."""
    if name in __all__:
        from aetherscan_ros.backends.classical import pipeline
        return getattr(pipeline, name)
    raise AttributeError(f'module {__name__!r} has no attribute {name!r}')


def __dir__():
    return sorted(set(globals()) | set(__all__))
