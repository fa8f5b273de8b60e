# Copyright 2026 The AetherScan ROS Authors
# SPDX-License-Identifier: Apache-2.0
"""
The ``classical`` backend: a real reconstruction without weights, GPU or torch.

Pipeline: COLMAP (pycolmap) SIFT features, exhaustive (or, for many views, sequential) matching
with geometric verification and incremental mapping with bundle adjustment; a direct two-view
relative-pose path when COLMAP's mapper cannot initialise (:mod:`.sfm`); then
dense depth from rectified view pairs with OpenCV StereoSGBM, fused by multi-pair consistency
(:mod:`.dense`).

Result conventions (besides those of :mod:`aetherscan_ros.backends.base`):

* Intrinsics: ``Frame.K`` when given (kept fixed, PINHOLE); otherwise a SIMPLE_PINHOLE camera
  per ``Frame.camera`` whose focal length COLMAP estimates (principal point at the centre).
* Scale is not metric: 1 unit = median depth of the sparse points seen from the reference view
  (``info['unit']``).
* A view COLMAP cannot register keeps its slot: its pose is all-NaN, it contributes no points,
  and it is listed in ``info['unregistered']`` (names). If view 0 is unregistered, the world is
  the optical frame of the first registered view (``info['reference_view']``).
* ``confidence`` is a quality score in (0, 1) (see :mod:`.dense`); sparse-only
  points (views without a stereo partner) get 0.05.

This module never imports torch.
"""

import logging
import os
from pathlib import Path
import tempfile
import time
from typing import Dict, List, Optional, Sequence

import cv2
import numpy as np

from aetherscan_ros.backends.base import (
    Frame, ProgressCallback, ProgressEvent, ReconstructionError, ReconstructionResult,
    result_from_view_clouds, ViewCloud)
from aetherscan_ros.backends.classical.dense import (
    choose_neighbors, DenseOptions, densify_view, scale_intrinsics, working_scale)
from aetherscan_ros.backends.classical.pairs import identical_images, identical_views_reason
from aetherscan_ros.backends.classical.sfm import (
    import_pycolmap, restore_colmap_verbosity, run_sfm, set_colmap_verbosity, SfmOptions)

_LOG = logging.getLogger(__name__)

SPARSE_ONLY_QUALITY = 0.05
MIN_IMAGE_SIDE = 32


def _frame_label(frame: Frame, index: int) -> str:
    return f'frame {index} ({frame.name})' if frame.name else f'frame {index}'


def validate_frames(frames: Sequence[Frame]) -> None:
    """Raise :class:`ReconstructionError` naming the first frame that cannot be used."""
    if frames is None or len(frames) < 2:
        count = 0 if frames is None else len(frames)
        raise ReconstructionError(f'the classical backend needs at least 2 frames, got {count}')
    for i, frame in enumerate(frames):
        label = _frame_label(frame, i)
        img = frame.image
        if not isinstance(img, np.ndarray) or img.ndim != 3 or img.shape[2] != 3:
            shape = getattr(img, 'shape', None)
            raise ReconstructionError(f'{label}: image must be an [H, W, 3] array, got {shape}')
        if img.dtype != np.uint8:
            raise ReconstructionError(f'{label}: image must be uint8 RGB, got {img.dtype}')
        if min(img.shape[:2]) < MIN_IMAGE_SIDE:
            raise ReconstructionError(f'{label}: image {img.shape[1]}x{img.shape[0]} is smaller '
                                      f'than {MIN_IMAGE_SIDE} px')
        if frame.K is not None:
            K = np.asarray(frame.K, np.float64)
            if K.shape != (3, 3) or not np.isfinite(K).all() or K[0, 0] <= 0 or K[1, 1] <= 0:
                raise ReconstructionError(f'{label}: K must be a finite 3x3 pinhole matrix with '
                                          f'positive focal lengths, got {K.tolist()}')
    groups = identical_images([frame.image for frame in frames])
    flat = frames[0].image.min() == frames[0].image.max()  # one colour: 'not enough texture'
    if len(groups) < 2 and not flat:
        names = [frame.name or f'frame {i}' for i, frame in enumerate(frames)]
        raise ReconstructionError(identical_views_reason(groups[0], names))


class ClassicalBackend:
    """
    COLMAP structure-from-motion + OpenCV dense stereo, on the CPU, without torch.

    Options (all keyword, all optional): ``max_features`` (SIFT per image, 4096),
    ``min_features`` (below this a view counts as textureless, 80), ``dense`` (True),
    ``dense_max_size`` (longest side for stereo, 800 px), ``dense_stride`` (pixel step of the
    dense grid, 2), ``num_neighbors`` (stereo partners per view, 2), ``consistency_tol``
    (relative depth agreement between pairs, 0.01), ``num_threads`` (-1 = all cores),
    ``seed`` (0), ``quiet_colmap`` (silence COLMAP's INFO log, True), ``intrinsics_source``
    (where the frames' K come from, named in ``info['intrinsics']``: ``'camera_info'``; the CLI
    passes ``'--intrinsics'``).
    """

    name = 'classical'

    def __init__(self, max_features: int = 4096, min_features: int = 80, dense: bool = True,
                 dense_max_size: int = 800, dense_stride: int = 2, num_neighbors: int = 2,
                 consistency_tol: float = 0.01, num_threads: int = -1, seed: int = 0,
                 quiet_colmap: bool = True, intrinsics_source: str = 'camera_info'):
        if int(max_features) < 64:
            raise ValueError(f'max_features must be >= 64, got {max_features}')
        if int(dense_stride) < 1 or int(dense_max_size) < 64:
            raise ValueError('dense_stride must be >= 1 and dense_max_size >= 64')
        if int(num_neighbors) < 1 or not 0 < float(consistency_tol) < 1:
            raise ValueError('num_neighbors must be >= 1 and consistency_tol in (0, 1)')
        self.sfm_options = SfmOptions(max_features=int(max_features),
                                      min_features=int(min_features),
                                      num_threads=int(num_threads), seed=int(seed))
        self.dense_options = DenseOptions(max_size=int(dense_max_size), stride=int(dense_stride),
                                          num_neighbors=int(num_neighbors),
                                          consistency_tol=float(consistency_tol))
        self.dense = bool(dense)
        self.quiet_colmap = bool(quiet_colmap)
        self.intrinsics_source = str(intrinsics_source)
        self.device = 'cpu'

    def describe(self) -> str:
        """Return a one-line description of the pipeline and library versions."""
        try:
            colmap = f'pycolmap {import_pycolmap().__version__}'
        except ImportError:  # pragma: no cover - pycolmap is a hard dependency
            colmap = 'pycolmap missing'
        dense = (f'StereoSGBM densify (stride {self.dense_options.stride}, '
                 f'<= {self.dense_options.max_size} px)' if self.dense else 'sparse only')
        threads = self.sfm_options.num_threads
        threads = os.cpu_count() if threads <= 0 else threads
        return (f'classical: COLMAP SIFT + incremental mapping ({colmap}), OpenCV '
                f'{cv2.__version__} {dense}, CPU x{threads}')

    def reconstruct(self, frames: Sequence[Frame],
                    progress: Optional[ProgressCallback] = None) -> ReconstructionResult:
        """Reconstruct 2 or more frames; see the module docstring for the conventions."""
        validate_frames(frames)
        timings: Dict[str, float] = {}
        start = time.perf_counter()
        last = [start]

        def emit(stage: str, fraction: float, message: str = '', cloud=None) -> None:
            if progress is not None:
                progress(ProgressEvent(stage, float(min(max(fraction, 0.0), 1.0)), message,
                                       cloud))

        def lap(key: str) -> None:
            now = time.perf_counter()
            timings[key] = timings.get(key, 0.0) + now - last[0]
            last[0] = now

        stage_of = {'features': None, 'matching': None, 'mapping': None}

        def sfm_report(stage: str, fraction: float, message: str) -> None:
            previous = [s for s, v in stage_of.items() if v is not None]
            if previous:
                lap(previous[-1])
            stage_of[stage] = True
            emit(stage, 0.02 + 0.5 * fraction, message)

        names = [f.name or f'frame {i}' for i, f in enumerate(frames)]
        images = [f.image for f in frames]
        Ks = [None if f.K is None else np.asarray(f.K, np.float64) for f in frames]
        cameras = [f.camera for f in frames]
        emit('preprocess', 0.0, f'{len(frames)} frames')
        verbosity = set_colmap_verbosity(True) if self.quiet_colmap else None
        try:
            with tempfile.TemporaryDirectory(prefix='aetherscan_classical_') as tmp:
                sparse = run_sfm(images, Ks, cameras, names, Path(tmp), self.sfm_options,
                                 sfm_report)
        finally:
            restore_colmap_verbosity(verbosity)
        lap('mapping' if stage_of['mapping'] else 'features')
        num = len(frames)
        registered = sparse.registered
        emit('poses', 0.55, f'{int(registered.sum())}/{num} views registered '
                            f'({sparse.method})')
        clouds = self._view_clouds(images, sparse, emit)
        lap('densify')
        timings['total'] = time.perf_counter() - start
        total_points = sum(len(c.points) for c in clouds)
        if total_points == 0:
            raise ReconstructionError(
                f'{int(registered.sum())} views were registered but no 3D point survived '
                'the consistency checks (too little texture or parallax)')
        known = [K is not None for K in Ks]
        info = dict(sparse.info)
        info.update({
            'method': sparse.method + (' + StereoSGBM dense fusion' if self.dense else ''),
            'registered_views': int(registered.sum()),
            'unregistered': [names[i] for i in np.flatnonzero(~registered)],
            'unregistered_policy': 'pose is NaN and the view has no points',
            'reference_view': int(sparse.reference_view),
            'world_frame': f'optical frame of view {sparse.reference_view} '
                           f'({names[sparse.reference_view]})',
            'intrinsics': (f'known ({self.intrinsics_source}), fixed' if all(known) else
                           'estimated by COLMAP (SIMPLE_PINHOLE)' if not any(known) else
                           f'mixed: known ones ({self.intrinsics_source}) fixed, the others '
                           'estimated by COLMAP'),
            'points_per_view': [int(len(c.points)) for c in clouds],
            'confidence': 'quality score in (0, 1): agreeing stereo pairs / pairs tried * '
                          'disparity / (disparity + 8 px); 0.05 for sparse-only points',
            'device': 'cpu',
        })
        emit('done', 1.0, f'{total_points} points from {int(registered.sum())} views')
        image_sizes = np.array([[img.shape[1], img.shape[0]] for img in images], np.int64)
        return result_from_view_clouds(clouds, sparse.poses_c2w, sparse.intrinsics, image_sizes,
                                       self.name, timings=timings, info=info)

    def _view_clouds(self, images: Sequence[np.ndarray], sparse, emit) -> List[ViewCloud]:
        """Densify every registered view in order, emitting one ``view_points`` event each."""
        num = len(images)
        opts = self.dense_options
        work_images, work_K = [], []
        for img, K in zip(images, sparse.intrinsics):
            s = working_scale(img.shape[1], img.shape[0], opts.max_size)
            if s < 1.0:
                size = (max(1, round(img.shape[1] * s)), max(1, round(img.shape[0] * s)))
                img = cv2.resize(img, size, interpolation=cv2.INTER_AREA)
                s = size[0] / images[len(work_images)].shape[1]
            work_images.append(img)
            work_K.append(scale_intrinsics(K, s))
        neighbors = (choose_neighbors(sparse.poses_c2w, sparse.registered, sparse.points,
                                      sparse.observers, opts) if self.dense else {})
        clouds = []
        for v in range(num):
            pts = np.zeros((0, 3), np.float32)
            cols = np.zeros((0, 3), np.uint8)
            qual = np.zeros(0, np.float32)
            if sparse.registered[v] and neighbors.get(v):
                pts, cols, qual = densify_view(v, work_images, work_K, sparse.poses_c2w,
                                               sparse.points, sparse.observers, neighbors[v],
                                               opts)
            if sparse.registered[v] and len(pts) == 0 and len(sparse.observers[v]):
                idx = sparse.observers[v]
                pts = sparse.points[idx].astype(np.float32)
                cols = sparse.colors[idx].astype(np.uint8)
                qual = np.full(len(idx), SPARSE_ONLY_QUALITY, np.float32)
                _LOG.info('view %d: no usable stereo partner, using its %d sparse points',
                          v, len(idx))
            cloud = ViewCloud(v, pts, cols, qual)
            clouds.append(cloud)
            emit('view_points', 0.55 + 0.44 * (v + 1) / num,
                 f'view {v}: {len(pts)} points', cloud)
        return clouds
