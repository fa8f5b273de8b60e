# Copyright 2026 The AetherScan ROS Authors
# SPDX-License-Identifier: Apache-2.0
"""
The ``classical`` backend: a real reconstruction without weights, GPU or torch.

Pipeline: COLMAP (pycolmap) SIFT features, exhaustive (or, for many views, sequential) matching
with geometric verification and incremental mapping with bundle adjustment; a direct two-view
relative-pose path when COLMAP's mapper cannot initialise (:mod:`.sfm`); then dense depth per
view, by the method that suits its partners (:mod:`.depth_fusion`): rectified pairs with OpenCV
StereoSGBM fused by multi-pair consistency (:mod:`.dense`) where the baseline runs across the
view, a multi-view plane sweep (:mod:`.plane_sweep`) where it does not (forward motion, the
epipole inside the image) or where it is narrow.

Result conventions (besides those of :mod:`aetherscan_ros.backends.base`):

* Intrinsics: ``Frame.K`` when given (kept fixed, PINHOLE); otherwise a SIMPLE_PINHOLE camera
  per ``Frame.camera`` whose focal length COLMAP estimates (principal point at the centre).
* Scale is not metric: 1 unit = median depth of the sparse points seen from the reference view
  (``info['unit']``).
* A view COLMAP cannot register keeps its slot: its pose is all-NaN, it contributes no points,
  and it is listed in ``info['unregistered']`` (names). If view 0 is unregistered, the world is
  the optical frame of the first registered view (``info['reference_view']``).
* ``confidence`` is a quality score in (0, 1) (see :mod:`.dense`, :mod:`.depth_fusion`);
  sparse-only points (views without dense depth) get 0.05.
* ``info['method']`` says what ran: the sparse method, then the dense methods with their view
  counts, e.g. ``COLMAP incremental mapping + plane-sweep dense (5 views) + StereoSGBM dense
  (3 views)``, or ``... + sparse points only (dense failed: <reason>)``; ``info['dense_methods']``
  names it per view (``plane-sweep``, ``StereoSGBM``, ``sparse``, ``none``).
* No point is written twice: a view without dense depth contributes the sparse points that no
  earlier view has written.

This module never imports torch.
"""

from dataclasses import replace
import logging
import os
from pathlib import Path
import tempfile
import time
from typing import Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np

from aetherscan_ros.backends import licences
from aetherscan_ros.backends.base import (
    Frame, ProgressCallback, ProgressEvent, ReconstructionError, ReconstructionResult,
    result_from_view_clouds, ViewCloud)
from aetherscan_ros.backends.classical.dense import (
    DenseOptions, densify_view, scale_intrinsics, working_scale)
from aetherscan_ros.backends.classical.depth_fusion import (
    cross_check, DensePlan, METHOD_NAMES, MODES, plan_dense, SGBM, SWEEP, sweep_points,
    sweep_views)
from aetherscan_ros.backends.classical.pairs import identical_images, identical_views_reason
from aetherscan_ros.backends.classical.plane_sweep import decimated_K, SweepOptions
from aetherscan_ros.backends.classical.sfm import (
    import_pycolmap, run_sfm, SfmOptions, SparseModel)

_LOG = logging.getLogger(__name__)

SPARSE_ONLY_QUALITY = 0.05
MIN_IMAGE_SIDE = 32


def set_colmap_verbosity(quiet: bool) -> Optional[int]:
    """Silence COLMAP's glog output below FATAL (process-wide); return the previous level."""
    try:
        pycolmap = import_pycolmap()
        previous = int(pycolmap.logging.minloglevel)
        pycolmap.logging.minloglevel = 3 if quiet else 0
        return previous
    except (ImportError, AttributeError):
        return None


def restore_colmap_verbosity(previous: Optional[int]) -> None:
    """Undo :func:`set_colmap_verbosity`."""
    if previous is None:
        return
    import_pycolmap().logging.minloglevel = previous


def merge_identical_points(sparse: SparseModel) -> SparseModel:
    """
    Return ``sparse`` with points that coincide (as float32, the output's type) merged.

    SIFT keeps several orientations of one keypoint, so two tracks can triangulate to the very
    same point; the output must hold it once. Observers are remapped to the merged indices.
    """
    if len(sparse.points) < 2:
        return sparse
    _, first, inverse = np.unique(sparse.points.astype(np.float32), axis=0, return_index=True,
                                  return_inverse=True)
    if len(first) == len(sparse.points):
        return sparse
    order = np.argsort(first)  # merged points keep the order of their first occurrence
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    new_index = rank[inverse.reshape(-1)]
    observers = [np.unique(new_index[obs]) for obs in sparse.observers]
    return replace(sparse, points=sparse.points[first[order]],
                   colors=sparse.colors[first[order]], observers=observers)


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
    ``dense_method`` (``'auto'``: per view, StereoSGBM where the partners rectify well, else the
    plane sweep; ``'sgbm'`` or ``'sweep'`` for every view), ``dense_max_size`` (longest side for
    stereo, 800 px), ``dense_stride`` (pixel step of the dense grid, 2; the plane sweep runs at
    that decimated resolution), ``num_neighbors`` (StereoSGBM partners per view, 2),
    ``sweep_neighbors`` (plane-sweep partners per view, 4), ``consistency_tol`` (relative depth
    agreement between pairs, 0.01; the plane sweep's cross-view check allows
    ``sweep_consistency_tol``, 0.02), ``num_threads`` (-1 = all cores),
    ``seed`` (0), ``quiet_colmap`` (silence COLMAP's INFO log, True), ``intrinsics_source``
    (where the frames' K come from, named in ``info['intrinsics']``: ``'camera_info'``; the CLI
    passes ``'--intrinsics'``).
    """

    name = 'classical'

    def __init__(self, max_features: int = 4096, min_features: int = 80, dense: bool = True,
                 dense_max_size: int = 800, dense_stride: int = 2, num_neighbors: int = 2,
                 consistency_tol: float = 0.01, num_threads: int = -1, seed: int = 0,
                 quiet_colmap: bool = True, intrinsics_source: str = 'camera_info',
                 dense_method: str = 'auto', sweep_neighbors: int = 4,
                 sweep_consistency_tol: float = 0.02):
        if int(max_features) < 64:
            raise ValueError(f'max_features must be >= 64, got {max_features}')
        if int(dense_stride) < 1 or int(dense_max_size) < 64:
            raise ValueError('dense_stride must be >= 1 and dense_max_size >= 64')
        if int(num_neighbors) < 1 or not 0 < float(consistency_tol) < 1:
            raise ValueError('num_neighbors must be >= 1 and consistency_tol in (0, 1)')
        if dense_method not in MODES:
            raise ValueError(f'dense_method must be one of {", ".join(MODES)}, got '
                             f'{dense_method!r}')
        if int(sweep_neighbors) < 1 or not 0 < float(sweep_consistency_tol) < 1:
            raise ValueError('sweep_neighbors must be >= 1 and sweep_consistency_tol in (0, 1)')
        self.sfm_options = SfmOptions(max_features=int(max_features),
                                      min_features=int(min_features),
                                      num_threads=int(num_threads), seed=int(seed))
        self.dense_options = DenseOptions(max_size=int(dense_max_size), stride=int(dense_stride),
                                          num_neighbors=int(num_neighbors),
                                          consistency_tol=float(consistency_tol))
        self.sweep_options = SweepOptions(num_neighbors=int(sweep_neighbors))
        self.sweep_tol = float(sweep_consistency_tol)
        self.dense_method = str(dense_method)
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
        methods = {'auto': 'StereoSGBM or plane-sweep densify', SGBM: 'StereoSGBM densify',
                   SWEEP: 'plane-sweep densify'}[self.dense_method]
        dense = (f'{methods} (stride {self.dense_options.stride}, '
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
        sparse = merge_identical_points(sparse)
        num = len(frames)
        registered = sparse.registered
        emit('poses', 0.55, f'{int(registered.sum())}/{num} views registered '
                            f'({sparse.method})')
        clouds, ran, planned = self._view_clouds(images, sparse, emit)
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
            'method': sparse.method + dense_summary(ran, self.dense, planned),
            'dense_methods': ran,
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
            'confidence': 'quality score in (0, 1): agreeing stereo pairs (or plane-sweep '
                          'neighbours) / pairs tried * disparity (or parallax) / (that + 8 px); '
                          f'{SPARSE_ONLY_QUALITY} for sparse-only points',
            'device': 'cpu',
            'licence': licences.CLASSICAL,
        })
        emit('done', 1.0, f'{total_points} points from {int(registered.sum())} views')
        image_sizes = np.array([[img.shape[1], img.shape[0]] for img in images], np.int64)
        return result_from_view_clouds(clouds, sparse.poses_c2w, sparse.intrinsics, image_sizes,
                                       self.name, timings=timings, info=info)

    def _view_clouds(self, images: Sequence[np.ndarray], sparse,
                     emit) -> Tuple[List[ViewCloud], List[str], int]:
        """
        Densify every registered view in order, emitting one ``view_points`` event each.

        Returns the clouds, per view what made its points (``info['dense_methods']``) and how
        many views had dense partners.
        """
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
        poses, points, observers = sparse.poses_c2w, sparse.points, sparse.observers
        plan = (plan_dense(poses, sparse.registered, points, observers, opts,
                           self.sweep_options, self.dense_method) if self.dense else DensePlan())
        maps = sweep_views(plan.views(SWEEP), plan.neighbors, work_images, work_K, poses, points,
                           observers, opts.stride, self.sweep_options,
                           lambda done, total: emit('densify', 0.55 + 0.2 * done / total,
                                                    f'plane sweep {done}/{total} views'))
        sweep_K = {v: decimated_K(work_K[v], opts.stride) for v in maps}
        written = np.zeros(len(points), bool)  # sparse points already in the output
        clouds, ran = [], []
        for v in range(num):
            pts = np.zeros((0, 3), np.float32)
            cols = np.zeros((0, 3), np.uint8)
            qual = np.zeros(0, np.float32)
            method = plan.method.get(v)
            if method == SGBM:
                pts, cols, qual = densify_view(v, work_images, work_K, poses, points, observers,
                                               plan.neighbors[v], opts)
            elif method == SWEEP:
                keep = cross_check(v, maps, plan.neighbors[v], sweep_K, poses, self.sweep_tol)
                pts, cols, qual = sweep_points(v, maps, keep, work_images[v], work_K[v], poses[v],
                                               opts.stride)
            ran.append(METHOD_NAMES[method] if len(pts) else 'none')
            if sparse.registered[v] and len(pts) == 0:
                idx = observers[v][~written[observers[v]]] if len(observers[v]) else []
                written[idx] = True
                pts = points[idx].astype(np.float32)
                cols = sparse.colors[idx].astype(np.uint8)
                qual = np.full(len(idx), SPARSE_ONLY_QUALITY, np.float32)
                ran[-1] = 'sparse'
                _LOG.info('view %d: no dense depth (%s), using %d sparse points not written '
                          'before', v, 'no partner' if method is None else f'{method} failed',
                          len(idx))
            cloud = ViewCloud(v, pts, cols, qual)
            clouds.append(cloud)
            emit('view_points', 0.75 + 0.24 * (v + 1) / num,
                 f'view {v}: {len(pts)} points', cloud)
        return clouds, ran, len(plan.method)


def _views(n: int) -> str:
    return f'{n} view{"s" if n != 1 else ""}'


def dense_summary(ran: Sequence[str], dense: bool, planned: int) -> str:
    """
    Return the dense part of ``info['method']``, true to what ran per view.

    ``ran`` holds one entry per view (:data:`METHOD_NAMES` values, ``'sparse'`` or ``'none'``);
    ``planned`` counts the views that had dense partners.
    """
    counts = {name: sum(1 for r in ran if r == name) for name in METHOD_NAMES.values()}
    parts = [f'{name} dense ({_views(n)})' for name, n in counts.items() if n]
    sparse = sum(1 for r in ran if r == 'sparse')
    if not parts:
        why = ('dense disabled' if not dense else
               'dense failed: no view has a partner with enough overlap and parallax'
               if not planned else
               f'dense failed: no depth of the {_views(planned)} tried survived the '
               'consistency checks')
        return f' + sparse points only ({why})'
    if sparse:
        parts.append(f'sparse points ({_views(sparse)})')
    return ' + ' + ' + '.join(parts)
