# Copyright 2026 The AetherScan ROS Authors
# SPDX-License-Identifier: Apache-2.0
"""
Identical views, the image pair of the two-view path, and the first pair of COLMAP's mapper.

Two copies of one picture (the same file saved twice, a camera that did not move, a re-encoded
copy) have no parallax: there is nothing to triangulate, and the reason must say so rather
than report a parallax of 0.00 degrees. Exact copies are found from the pixels before any
feature is extracted (:func:`identical_images`); near-copies after matching, from the
displacement of their verified matches (:func:`best_verified_pair`).

COLMAP's mapper starts from the pair with the most matches even when that pair's verified
geometry is a homography (``PLANAR_OR_PANORAMIC``), and then takes the pose from the
homography's decomposition. A camera driving forward over a floor gives exactly such pairs
between close views, and the decomposition it picked was 12 degrees off (the whole model then
stayed wrong). :func:`essential_initial_pair` names the pair the mapper should start from
instead: the one with the most inliers whose pose comes from an essential (or fundamental)
matrix.
"""

import hashlib
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from aetherscan_ros.backends.base import ReconstructionError

#: A pair whose verified matches moved by less than this (median, pixels) shows one view twice.
IDENTICAL_SHIFT_PX = 0.5
MIN_PAIR_MATCHES = 15
_MAX_NAMED = 6
_MAX_IMAGE_ID = 2 ** 31 - 1


#: COLMAP's verified-geometry configurations posed from an E or F matrix (CALIBRATED,
#: UNCALIBRATED) ...
EPIPOLAR_CONFIGS = (2, 3)
#: ... and those posed from a homography (PLANAR, PANORAMIC, PLANAR_OR_PANORAMIC).
HOMOGRAPHY_CONFIGS = (4, 5, 6)


def essential_initial_pair(db, min_inliers: int,
                           max_error_px: float = 4.0) -> Optional[Tuple[int, int]]:
    """
    Return the image ids of the pair the mapper should start from, or None to let it choose.

    ``db`` is an open pycolmap ``Database`` after matching. Only when the pair with the most
    inliers is posed from a homography is a pair named: among the epipolar ones (E or F) with
    ``min_inliers``, the one whose inliers the pair's homography explains least (transfer error
    under ``max_error_px``): the best-conditioned relative pose, not merely the most matches.
    """
    pair_ids, geometries = db.read_two_view_geometries()
    rows = [(len(g.inlier_matches), int(g.config), int(p), g)
            for p, g in zip(pair_ids, geometries)]
    if not rows or max(rows, key=lambda r: r[0])[1] not in HOMOGRAPHY_CONFIGS:
        return None
    keypoints: Dict[int, np.ndarray] = {}
    best = None
    for count, config, pair_id, geometry in rows:
        if config not in EPIPOLAR_CONFIGS or count < min_inliers:
            continue
        ids = divmod(pair_id, _MAX_IMAGE_ID)  # COLMAP's pair id: id1 * (2^31 - 1) + id2
        for image_id in ids:
            if image_id not in keypoints:
                keypoints[image_id] = np.asarray(db.read_keypoints(image_id))[:, :2]
        inl = np.asarray(geometry.inlier_matches).reshape(-1, 2)
        pa = keypoints[ids[0]][inl[:, 0]]
        pb = keypoints[ids[1]][inl[:, 1]]
        moved = np.c_[pa, np.ones(len(pa))] @ np.asarray(geometry.H, np.float64).T
        with np.errstate(divide='ignore', invalid='ignore'):
            err = np.linalg.norm(moved[:, :2] / moved[:, 2:3] - pb, axis=1)
        key = (float(np.mean(err < max_error_px)), -count)
        if best is None or key < best[0]:
            best = (key, (int(ids[0]), int(ids[1])))
    return None if best is None else best[1]


def identical_images(images: Sequence[np.ndarray]) -> List[List[int]]:
    """Group the indices of pixel-for-pixel identical images, in order of first appearance."""
    groups: Dict[tuple, List[int]] = {}
    for i, img in enumerate(images):
        digest = hashlib.blake2b(np.ascontiguousarray(img).data, digest_size=16).digest()
        groups.setdefault((img.shape, digest), []).append(i)
    return list(groups.values())


def identical_views_reason(views: Sequence[int], names: Sequence[str], detail: str = '') -> str:
    """
    Return the reason for views that show one picture, naming them by index and name.

    ``detail`` (e.g. how far the features moved) follows "identical images" in parentheses.
    """
    views = [int(v) for v in views]
    shown = views[:_MAX_NAMED]
    numbers = ', '.join(str(v) for v in shown[:-1]) + f' and {shown[-1]}'
    labels = ', '.join(str(names[v]) for v in shown)
    more = f' and {len(views) - len(shown)} more' if len(views) > len(shown) else ''
    kind = 'near-identical' if detail else 'identical'
    detail = f' ({detail})' if detail else ''
    return (f'views {numbers}{more} ({labels}) are {kind} images{detail}: nothing to '
            'triangulate; take the views from different camera positions')


def best_verified_pair(db, files: Sequence[str], names: Sequence[str]
                       ) -> Tuple[int, int, np.ndarray]:
    """
    Return ``(a, b, inlier_matches [M, 2])`` of the pair with the most verified matches.

    ``db`` is an open pycolmap ``Database`` holding ``files``. Pairs whose matches did not move
    (median under :data:`IDENTICAL_SHIFT_PX`) show one view twice and are skipped. Raises
    :class:`ReconstructionError` when no other pair has :data:`MIN_PAIR_MATCHES` matches:
    naming the identical views when that is why.
    """
    id_of = {img.name: img.image_id for img in db.read_all_images()}
    keypoints = {}

    def points(view):
        if view not in keypoints:
            keypoints[view] = np.asarray(db.read_keypoints(id_of[files[view]]))[:, :2]
        return keypoints[view]

    best, identical = None, None
    for a in range(len(files)):
        for b in range(a + 1, len(files)):
            try:
                geom = db.read_two_view_geometry(id_of[files[a]], id_of[files[b]])
            except (RuntimeError, ValueError, KeyError):
                continue
            inl = np.asarray(geom.inlier_matches).reshape(-1, 2)
            if len(inl) >= MIN_PAIR_MATCHES:
                shift = float(np.median(np.linalg.norm(
                    points(a)[inl[:, 0]] - points(b)[inl[:, 1]], axis=1)))
                if shift < IDENTICAL_SHIFT_PX:
                    identical = identical or (a, b, shift)
                    continue
            if best is None or len(inl) > len(best[2]):
                best = (a, b, inl)
    if best is not None and len(best[2]) >= MIN_PAIR_MATCHES:
        return best
    if identical is not None:
        a, b, shift = identical
        raise ReconstructionError(identical_views_reason(
            (a, b), names, f'their matched features moved by a median {shift:.2f} px'))
    found = 0 if best is None else len(best[2])
    raise ReconstructionError(
        f'COLMAP could not register two views and the best image pair has only {found} '
        f'verified matches (need {MIN_PAIR_MATCHES}): the views do not overlap or lack texture')
