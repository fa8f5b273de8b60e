# Copyright 2026 The AetherScan ROS Authors
# SPDX-License-Identifier: Apache-2.0
"""
Sparse structure-from-motion for the classical backend: COLMAP via pycolmap, OpenCV fallback.

COLMAP does the heavy lifting (SIFT extraction, exhaustive or sequential matching with geometric
verification, incremental mapping with bundle adjustment). When COLMAP's mapper cannot initialise a
model (typically two views with less parallax than its initialisation threshold), the best
verified image pair is reconstructed directly: COLMAP's relative-pose estimator (LO-RANSAC) and
non-linear refinement on the verified matches, then linear triangulation with OpenCV. For
forward motion the mapper may start from a pair driving straight ahead
(``init_max_forward_motion`` 1), and from an epipolar pair rather than one posed from a
homography (:func:`.pairs.essential_initial_pair`).

Outputs use this package's conventions (see :mod:`aetherscan_ros.backends.base`): the world
frame is the optical frame of the reference view (the lowest-index registered view), ``K`` uses
the OpenCV pixel-centre convention (COLMAP's principal point is 0.5 px larger), and the scale is
normalised so that the median depth of the sparse points seen from the reference view is 1.
"""

from dataclasses import dataclass, field
import logging
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from aetherscan_ros.backends.base import ReconstructionError
from aetherscan_ros.backends.classical.geometry_checks import (
    check_cheirality, check_planar, check_rotation, triangulate)
from aetherscan_ros.backends.classical.pairs import best_verified_pair, essential_initial_pair
from aetherscan_ros.core.geometry import invert_pose

_LOG = logging.getLogger(__name__)

# COLMAP puts the centre of the top-left pixel at (0.5, 0.5); OpenCV/ROS put it at (0, 0).
COLMAP_PIXEL_OFFSET = 0.5


@dataclass
class SfmOptions:
    """Tuning of the sparse stage (defaults suit 2-50 views of a few hundred pixels)."""

    max_features: int = 4096
    min_features: int = 80
    exhaustive_max_views: int = 30
    sequential_overlap: int = 8
    init_min_tri_angle_deg: float = 4.0
    init_min_inliers: int = 50
    init_max_forward_motion: float = 1.0
    min_parallax_deg: float = 0.75
    num_threads: int = -1
    seed: int = 0


@dataclass
class SparseModel:
    """
    Sparse reconstruction in the output frame.

    ``poses_c2w`` ``[V, 4, 4]`` (NaN for unregistered views), ``intrinsics`` ``[V, 3, 3]``
    (OpenCV convention, input image size), ``registered`` ``[V]`` bool, ``points`` ``[P, 3]``,
    ``colors`` ``[P, 3]`` uint8, ``observers[v]``: indices of the points seen by view v.
    """

    poses_c2w: np.ndarray
    intrinsics: np.ndarray
    registered: np.ndarray
    points: np.ndarray
    colors: np.ndarray
    observers: List[np.ndarray]
    method: str
    reference_view: int
    info: Dict[str, object] = field(default_factory=dict)


def import_pycolmap():
    """
    Import and return pycolmap without breaking zlib users loaded after it.

    The pycolmap 4.2.1 wheel carries its own zlib; when pycolmap is the first library in the
    process to bring zlib, later deflate users (``cv2.imwrite`` of PNG, Pillow, Python's
    ``zlib``/``gzip``) bind to it and abort with heap corruption. Loading Python's ``zlib``
    module (the system libz) and OpenCV first avoids that. Import pycolmap only through here:
    it also keeps the process's SIGINT/SIGTERM handlers (:mod:`aetherscan_ros.core.signals`).
    """
    import zlib  # noqa: F401  (must precede pycolmap, see above)

    from aetherscan_ros.core.signals import preserve_signal_handlers
    # pycolmap's glog takes SIGTERM over at import (stack dump + abort on `docker stop`):
    # the process's own SIGINT/SIGTERM handlers are put back.
    with preserve_signal_handlers():
        import pycolmap
    return pycolmap


def _write_images(images: Sequence[np.ndarray], folder: Path) -> List[str]:
    import cv2

    names = []
    for i, img in enumerate(images):
        name = f'view_{i:04d}.png'
        ok = cv2.imwrite(str(folder / name), cv2.cvtColor(img, cv2.COLOR_RGB2BGR),
                         [cv2.IMWRITE_PNG_COMPRESSION, 1])
        if not ok:
            raise ReconstructionError(f'cannot write a temporary image to {folder}')
        names.append(name)
    return names


def _camera_groups(images, Ks, cameras) -> List[Tuple[List[int], Optional[np.ndarray]]]:
    """Group views that share one camera model: same camera label, size and K (or K unknown)."""
    groups: Dict[tuple, List[int]] = {}
    for i, (img, K) in enumerate(zip(images, Ks)):
        kkey = None if K is None else tuple(np.round(np.asarray(K, np.float64).ravel(), 6))
        key = (cameras[i], img.shape[:2], kkey)
        groups.setdefault(key, []).append(i)
    return [(idx, None if key[2] is None else np.asarray(Ks[idx[0]], np.float64))
            for key, idx in groups.items()]


def guess_intrinsics(width: int, height: int) -> np.ndarray:
    """Return COLMAP's prior for an unknown camera: focal 1.2 * max(w, h), centred."""
    f = 1.2 * max(width, height)
    return np.array([[f, 0.0, (width - 1) / 2.0], [0.0, f, (height - 1) / 2.0], [0.0, 0.0, 1.0]])


def run_sfm(images: Sequence[np.ndarray], Ks: Sequence[Optional[np.ndarray]],
            cameras: Sequence[str], names: Sequence[str], workdir: Path, opts: SfmOptions,
            report: Callable[[str, float, str], None]) -> SparseModel:
    """
    Estimate poses (and intrinsics where unknown) and sparse points for ``images``.

    ``images``: ``[H, W, 3]`` uint8 RGB arrays; ``Ks``: ``[3, 3]`` or None per view (OpenCV
    convention); ``names`` label views in error messages. ``report(stage, fraction, message)``
    receives progress in [0, 1] of this stage. Raises :class:`ReconstructionError` with the
    reason when no two views can be registered.
    """
    pycolmap = import_pycolmap()

    num = len(images)
    image_dir = workdir / 'images'
    image_dir.mkdir()
    db_path = workdir / 'database.db'
    files = _write_images(images, image_dir)
    device = pycolmap.Device.cpu
    report('features', 0.0, f'SIFT features of {num} views')
    for idx, K in _camera_groups(images, Ks, cameras):
        reader = pycolmap.ImageReaderOptions()
        if K is None:
            reader.camera_model = 'SIMPLE_PINHOLE'
        else:
            reader.camera_model = 'PINHOLE'
            reader.camera_params = ','.join(
                f'{v:.9g}' for v in (K[0, 0], K[1, 1], K[0, 2] + COLMAP_PIXEL_OFFSET,
                                     K[1, 2] + COLMAP_PIXEL_OFFSET))
        extraction = pycolmap.FeatureExtractionOptions()
        extraction.use_gpu = False
        extraction.num_threads = opts.num_threads
        extraction.sift.max_num_features = opts.max_features
        pycolmap.extract_features(db_path, image_dir, image_names=[files[i] for i in idx],
                                  camera_mode=pycolmap.CameraMode.SINGLE,
                                  reader_options=reader, extraction_options=extraction,
                                  device=device)
    with pycolmap.Database.open(db_path) as db:
        id_of = {img.name: img.image_id for img in db.read_all_images()}
        camera_of = {img.name: img.camera_id for img in db.read_all_images()}
        counts = np.array([db.num_keypoints_for_image(id_of[f]) for f in files])
    poor = [f'{names[i]} ({counts[i]} features)' for i in range(num)
            if counts[i] < opts.min_features]
    if num - len(poor) < 2:
        raise ReconstructionError(
            'not enough texture: fewer than two views have at least '
            f'{opts.min_features} SIFT features: {", ".join(poor)}; a textureless or blank '
            'scene cannot be reconstructed')
    report('matching', 0.3, 'matching features')
    matching = pycolmap.FeatureMatchingOptions()
    matching.use_gpu = False
    matching.num_threads = opts.num_threads
    if num <= opts.exhaustive_max_views:
        pycolmap.match_exhaustive(db_path, matching_options=matching, device=device)
        matcher = 'exhaustive'
    else:
        pairing = pycolmap.SequentialPairingOptions()
        pairing.overlap = opts.sequential_overlap
        pycolmap.match_sequential(db_path, matching_options=matching, pairing_options=pairing,
                                  device=device)
        matcher = f'sequential (overlap {opts.sequential_overlap})'
    with pycolmap.Database.open(db_path) as db:
        verified = db.num_verified_image_pairs()
        first_pair = essential_initial_pair(db, opts.init_min_inliers)
    if verified == 0:
        raise ReconstructionError(
            f'no pair of the {num} views shares enough geometrically verified SIFT matches '
            '(views do not overlap, or the scene is repetitive/textureless)')
    report('mapping', 0.6, f'incremental mapping ({verified} verified pairs)')
    pipeline = pycolmap.IncrementalPipelineOptions()
    known = all(K is not None for K in Ks)
    pipeline.ba_refine_focal_length = not known
    if not known:  # mixed input: keep the cameras whose K was given fixed
        fixed = {int(camera_of[f]) for f, K in zip(files, Ks) if K is not None}
        pipeline.constant_cameras = fixed
        pipeline.mapper.constant_cameras = fixed
    pipeline.ba_refine_principal_point = False
    pipeline.ba_refine_extra_params = False
    pipeline.min_model_size = 2
    pipeline.num_threads = opts.num_threads
    pipeline.random_seed = opts.seed
    pipeline.extract_colors = True
    pipeline.mapper.init_max_forward_motion = opts.init_max_forward_motion  # 1: driving ahead
    pipeline.mapper.init_min_num_inliers = opts.init_min_inliers
    pipeline.mapper.abs_pose_refine_focal_length = not known
    pipeline.mapper.random_seed = opts.seed
    pipeline.triangulation.random_seed = opts.seed
    for attempt, pair in enumerate([first_pair, None] if first_pair else [None]):
        pipeline.init_image_id1, pipeline.init_image_id2 = pair or (-1, -1)
        pipeline.init_num_trials = 3 if pair else 200  # a named pair fails fast
        # it was verified with an E/F matrix: half the usual triangulation angle will do
        pipeline.mapper.init_min_tri_angle = opts.init_min_tri_angle_deg / (2 if pair else 1)
        out_dir = workdir / f'sparse{attempt}'
        out_dir.mkdir()
        recs = pycolmap.incremental_mapping(db_path, image_dir, out_dir, options=pipeline)
        best = max(recs.values(), key=lambda r: r.num_reg_images(), default=None)
        if best is not None and best.num_reg_images() >= 2:
            break  # else the named first pair did not initialise: let COLMAP choose
    info = {'matcher': matcher, 'verified_pairs': int(verified),
            'features_per_view': [int(c) for c in counts]}
    if best is not None and best.num_reg_images() >= 2:
        model = _from_colmap(best, files, images, Ks)
        model.info.update(info)
        model.info['colmap_models'] = len(recs)
        return model
    _LOG.info('COLMAP could not initialise a model; trying the two-view relative-pose path')
    model = _two_view_fallback(db_path, files, images, Ks, names, opts)
    model.info.update(info)
    return model


def _finalise(c2w_colmap: np.ndarray, registered: np.ndarray, points: np.ndarray,
              colors: np.ndarray, observers: List[np.ndarray], intrinsics: np.ndarray,
              method: str) -> SparseModel:
    """Express everything in the reference view's optical frame with unit median depth."""
    ref = int(np.flatnonzero(registered)[0])
    world_to_ref = invert_pose(c2w_colmap[ref])
    poses = np.full_like(c2w_colmap, np.nan)
    poses[registered] = world_to_ref @ c2w_colmap[registered]
    pts = points @ world_to_ref[:3, :3].T + world_to_ref[:3, 3] if len(points) else points
    seen = pts[observers[ref]] if len(observers[ref]) else pts
    depths = seen[:, 2][seen[:, 2] > 0] if len(seen) else np.zeros(0)
    scale = 1.0 / float(np.median(depths)) if len(depths) else 1.0
    poses[registered, :3, 3] *= scale
    pts = pts * scale
    poses[ref] = np.eye(4)
    return SparseModel(poses_c2w=poses, intrinsics=intrinsics, registered=registered,
                       points=np.asarray(pts, np.float64), colors=colors, observers=observers,
                       method=method, reference_view=ref,
                       info={'unit': 'median depth of the sparse points seen from view '
                                     f'{ref} (scale is not metric)'})


def _from_colmap(rec, files: Sequence[str], images, Ks) -> SparseModel:
    num = len(files)
    index_of = {f: i for i, f in enumerate(files)}
    c2w = np.full((num, 4, 4), np.nan)
    registered = np.zeros(num, bool)
    intrinsics = np.zeros((num, 3, 3))
    image_view = {}
    for image_id, image in rec.images.items():
        view = index_of[image.name]
        image_view[image_id] = view
        cam = rec.cameras[image.camera_id]
        K = np.asarray(cam.calibration_matrix(), np.float64).copy()
        K[0, 2] -= COLMAP_PIXEL_OFFSET
        K[1, 2] -= COLMAP_PIXEL_OFFSET
        intrinsics[view] = K
        if image.has_pose:
            cfw = np.eye(4)
            cfw[:3, :] = image.cam_from_world().matrix()
            c2w[view] = invert_pose(cfw)
            registered[view] = True
    for view in range(num):
        if not intrinsics[view].any():
            h, w = images[view].shape[:2]
            intrinsics[view] = Ks[view] if Ks[view] is not None else guess_intrinsics(w, h)
    ids = list(rec.points3D.keys())
    points = np.zeros((len(ids), 3))
    colors = np.zeros((len(ids), 3), np.uint8)
    obs: List[List[int]] = [[] for _ in range(num)]
    for k, pid in enumerate(ids):
        p = rec.points3D[pid]
        points[k] = p.xyz
        colors[k] = p.color
        for el in p.track.elements:
            view = image_view.get(el.image_id)
            if view is not None:
                obs[view].append(k)
    observers = [np.unique(np.asarray(o, np.int64)) for o in obs]
    model = _finalise(c2w, registered, points, colors, observers, intrinsics,
                      'COLMAP incremental mapping')
    model.info['mean_reprojection_error_px'] = float(rec.compute_mean_reprojection_error())
    return model


def _two_view_fallback(db_path: Path, files, images, Ks, names,
                       opts: SfmOptions) -> SparseModel:
    """
    Reconstruct the best verified pair: COLMAP relative pose (LO-RANSAC + refinement).

    Used when the incremental mapper cannot initialise (typically two views whose parallax is
    below its initialisation threshold). Points are triangulated linearly with OpenCV.
    Degenerate geometry (a planar scene, a failed cheirality check, an implausible rotation) is
    refused or, for a planar scene with one valid solution, posed from the homography
    (:mod:`.geometry_checks`).
    """
    pycolmap = import_pycolmap()
    num = len(files)
    with pycolmap.Database.open(db_path) as db:
        id_of = {img.name: img.image_id for img in db.read_all_images()}
        cam_of = {img.image_id: img.camera_id for img in db.read_all_images()}
        a, b, inl = best_verified_pair(db, files, names)  # refuses identical views by name
        cam_a = db.read_camera(cam_of[id_of[files[a]]])
        cam_b = db.read_camera(cam_of[id_of[files[b]]])
        pa = np.asarray(db.read_keypoints(id_of[files[a]]))[inl[:, 0], :2].astype(np.float64)
        pb = np.asarray(db.read_keypoints(id_of[files[b]]))[inl[:, 1], :2].astype(np.float64)
    ransac = pycolmap.RANSACOptions()
    ransac.max_error = 1.5
    ransac.random_seed = opts.seed
    est = pycolmap.estimate_relative_pose(cam_a, pa, cam_b, pb, ransac)
    if est is None or est['num_inliers'] < 15:
        raise ReconstructionError(f'{names[a]} / {names[b]}: no relative pose fits the '
                                  f'{len(pa)} verified matches (degenerate geometry)')
    mask = np.asarray(est['inlier_mask'], bool).reshape(-1)
    refined = pycolmap.refine_relative_pose(est['cam2_from_cam1'], cam_a, pa, cam_b, pb,
                                            mask.reshape(-1, 1))
    pose = refined['cam2_from_cam1'] if isinstance(refined, dict) else refined
    b_from_a = np.vstack([np.asarray(pose.matrix(), np.float64), [0, 0, 0, 1]])
    label = f'{names[a]} / {names[b]}'
    Ka, Kb = (np.asarray(c.calibration_matrix(), np.float64) for c in (cam_a, cam_b))
    known = Ks[a] is not None and Ks[b] is not None
    b_from_a, mask, checks = check_planar(pa, pb, Ka, Kb, b_from_a, mask, ransac.max_error,
                                          label, opts.min_parallax_deg, known)
    na, nb = (np.asarray(c.cam_from_img(p[mask]), np.float64) for c, p in ((cam_a, pa),
                                                                           (cam_b, pb)))
    X, parallax, ok = triangulate(na, nb, b_from_a)
    check_cheirality(ok, parallax, opts.min_parallax_deg, label, known)
    median_parallax = float(np.median(parallax[ok])) if ok.any() else 0.0
    if ok.sum() < 15 or median_parallax < opts.min_parallax_deg:
        raise ReconstructionError(
            f'{label}: insufficient parallax (median {median_parallax:.2f} deg, '
            f'need {opts.min_parallax_deg}): the camera did not move or only rotated')
    check_rotation(b_from_a, pa[mask], pb[mask], images[b].shape[1::-1], label)
    ok &= parallax > 0.25 * opts.min_parallax_deg
    X = X[ok]
    px = np.round(pa[mask][ok] - COLMAP_PIXEL_OFFSET).astype(int)
    h, w = images[a].shape[:2]
    colors = images[a][np.clip(px[:, 1], 0, h - 1), np.clip(px[:, 0], 0, w - 1)]
    intr = np.zeros((num, 3, 3))
    for v in range(num):
        h, w = images[v].shape[:2]
        intr[v] = Ks[v] if Ks[v] is not None else guess_intrinsics(w, h)
    for v, cam in ((a, cam_a), (b, cam_b)):
        K = np.asarray(cam.calibration_matrix(), np.float64).copy()
        K[:2, 2] -= COLMAP_PIXEL_OFFSET
        intr[v] = K
    c2w = np.full((num, 4, 4), np.nan)
    c2w[a] = np.eye(4)
    c2w[b] = invert_pose(b_from_a)
    registered = np.zeros(num, bool)
    registered[[a, b]] = True
    observers = [np.zeros(0, np.int64) for _ in range(num)]
    observers[a] = observers[b] = np.arange(len(X))
    method = ('COLMAP two-view relative pose (LO-RANSAC + refinement)'
              if checks['pose_source'] == 'essential matrix' else
              'two-view homography decomposition (planar scene)')
    model = _finalise(c2w, registered, X, colors, observers, intr, method)
    model.info['two_view_pair'] = [int(a), int(b)]
    model.info['median_parallax_deg'] = median_parallax
    model.info.update(checks)
    if Ks[a] is None or Ks[b] is None:
        model.info['warning'] = ("two views cannot determine the focal length: COLMAP's prior "
                                 '(1.2 x the longest image side) was used, so the cloud is '
                                 'distorted unless it happens to be right; give the intrinsics '
                                 '(camera_info / --intrinsics) or more views')
    return model
