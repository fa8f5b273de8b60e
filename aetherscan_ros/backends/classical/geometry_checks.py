# Copyright 2026 The AetherScan ROS Authors
# SPDX-License-Identifier: Apache-2.0
"""
Degenerate two-view geometry: refuse it with a reason instead of returning a wrong pose.

The essential matrix of two views does not determine the relative pose when the matches also
fit a homography: a planar scene (a book cover, a poster, a wall taken nearly front-on) or a
camera that only rotated. Points on a plane often fit two physically different poses equally
well, and RANSAC then returns either: a photograph of a circuit board and a second view of it
turned 7 degrees gave 0.6 degrees and a translation 47 degrees off, with every match an inlier.
As in ORB-SLAM's initialiser and COLMAP's two-view geometry, the homography's support is
compared with the essential matrix's (:data:`PLANAR_RATIO`). When the homography explains the
matches, the pose is taken from its decomposition (Faugeras / Malis-Vargas, via
``cv2.decomposeHomographyMat``) if exactly one solution puts the plane in front of both
cameras; the pair is refused when two do (ambiguous), when none does, when the baseline is
negligible (the camera only turned), and when the focal length is only a guess (two views of a
plane cannot determine it, and the decomposition depends on it). Any two-view pose must then
put most triangulated points in front of both cameras (cheirality) and must not claim a large
rotation between views whose features hardly moved.

Coordinates: ``pa``/``pb`` ``[N, 2]`` are matched pixel positions and ``Ka``/``Kb`` the matching
calibrations (any pixel convention, as long as points and K agree); ``b_from_a`` ``[4, 4]``
maps points from camera a's frame to camera b's.
"""

from dataclasses import dataclass
from typing import List, Optional, Tuple

import numpy as np

from aetherscan_ros.backends.base import ReconstructionError

#: Homography inliers / essential-matrix inliers at or above this: the homography explains the
#: matches and the essential matrix does not fix the pose (COLMAP's ``max_H_inlier_ratio``).
PLANAR_RATIO = 0.8
#: The homography's error (a 2D transfer distance) is allowed this much more than the essential
#: matrix's (a 1D distance to the epipolar line): sqrt(chi2_2 / chi2_1) at 95 %, as ORB-SLAM.
HOMOGRAPHY_ERROR_SCALE = 1.25
#: Fraction of the triangulated points (with parallax) that a pose must put in front of both
#: cameras; a pose with fewer is not physically valid.
MIN_FRONT_FRACTION = 0.9
#: Fraction of a homography's inliers that one of its decompositions must put in front of both
#: cameras. Depths from a plane are exact up to points on its vanishing line, so a solution that
#: puts a few per cent behind a camera is impossible, not merely worse.
PLANE_FRONT_FRACTION = 0.98
#: Two poses that differ by less than this (rotation, and translation direction x 0.2) agree.
AGREE_DEG = 2.0
#: Relative rotation above which the features must have moved (see :func:`check_rotation`).
LARGE_ROTATION_DEG = 60.0
#: ... by at least this share of the image diagonal (median over the matches).
MIN_SHIFT_FOR_LARGE_ROTATION = 0.05


@dataclass(frozen=True)
class HomographyPose:
    """One decomposition of a homography: ``R``, ``t`` (unit: plane distance), normal ``n``."""

    R: np.ndarray
    t: np.ndarray
    n: np.ndarray
    front_fraction: float

    def b_from_a(self) -> np.ndarray:
        """Return the ``[4, 4]`` transform with a unit translation direction."""
        pose = np.eye(4)
        pose[:3, :3] = self.R
        pose[:3, 3] = self.t / max(float(np.linalg.norm(self.t)), 1e-12)
        return pose


def rotation_deg(R: np.ndarray) -> float:
    """Return the angle of rotation matrix ``R`` in degrees."""
    return float(np.degrees(np.arccos(np.clip((np.trace(R) - 1.0) / 2.0, -1.0, 1.0))))


def direction_deg(u: np.ndarray, v: np.ndarray) -> float:
    """Return the angle between two (non-zero) vectors in degrees."""
    cos = float(u @ v) / max(float(np.linalg.norm(u) * np.linalg.norm(v)), 1e-12)
    return float(np.degrees(np.arccos(np.clip(cos, -1.0, 1.0))))


def normalised(points: np.ndarray, K: np.ndarray) -> np.ndarray:
    """Return ``[N, 3]`` homogeneous normalised image coordinates (z = 1) of pixels ``[N, 2]``."""
    hom = np.column_stack([points, np.ones(len(points))])
    return hom @ np.linalg.inv(K).T


def fit_homography(pa: np.ndarray, pb: np.ndarray, max_error_px: float
                   ) -> Tuple[Optional[np.ndarray], np.ndarray]:
    """Return ``(H [3, 3] or None, inlier mask [N])``: RANSAC fit of ``pb ~ H pa`` (pixels)."""
    import cv2

    if len(pa) < 4:
        return None, np.zeros(len(pa), bool)
    H, mask = cv2.findHomography(pa.astype(np.float64), pb.astype(np.float64), cv2.RANSAC,
                                 float(max_error_px), maxIters=4000, confidence=0.9999)
    if H is None:
        return None, np.zeros(len(pa), bool)
    return H, np.asarray(mask, bool).reshape(-1)


def homography_poses(H: np.ndarray, Ka: np.ndarray, Kb: np.ndarray,
                     ma: np.ndarray) -> List[HomographyPose]:
    """
    Decompose pixel homography ``H`` into ``(R, t, n)`` solutions, best-supported first.

    ``ma`` ``[N, 3]`` are camera a's normalised coordinates of the homography's inliers; each
    solution's ``front_fraction`` is the share of them that its plane puts in front of both
    cameras (of the four solutions, at most two are physically valid).
    """
    import cv2

    Hn = np.linalg.inv(Kb) @ H @ Ka
    count, rotations, translations, normals = cv2.decomposeHomographyMat(Hn, np.eye(3))
    poses = []
    for i in range(count):
        R = np.asarray(rotations[i], np.float64)
        t = np.asarray(translations[i], np.float64).reshape(3)
        n = np.asarray(normals[i], np.float64).reshape(3)
        inverse_depth = ma @ n  # n . X = 1 on the plane (t is in plane distances)
        depth = 1.0 / np.where(inverse_depth > 0, inverse_depth, 1.0)
        Xb = (ma * depth[:, None]) @ R.T + t
        front = (inverse_depth > 0) & (Xb[:, 2] > 0)
        poses.append(HomographyPose(R, t, n, float(front.mean()) if len(front) else 0.0))
    return sorted(poses, key=lambda p: -p.front_fraction)


def pose_difference(a: np.ndarray, b: np.ndarray) -> Tuple[float, float]:
    """Return (rotation difference, translation-direction difference) in degrees."""
    return (rotation_deg(a[:3, :3] @ b[:3, :3].T), direction_deg(a[:3, 3], b[:3, 3]))


def _agree(a: np.ndarray, b: np.ndarray) -> bool:
    drot, dtrans = pose_difference(a, b)
    return drot <= AGREE_DEG and dtrans <= AGREE_DEG / 0.2


def check_planar(pa: np.ndarray, pb: np.ndarray, Ka: np.ndarray, Kb: np.ndarray,
                 b_from_a: np.ndarray, e_mask: np.ndarray, max_error_px: float, label: str,
                 min_parallax_deg: float, focal_known: bool = True
                 ) -> Tuple[np.ndarray, np.ndarray, dict]:
    """
    Check an essential-matrix pose against the homography that the matches may fit.

    Returns ``(b_from_a, inlier mask, info)``: unchanged when the homography does not explain
    the matches (ratio below :data:`PLANAR_RATIO`); otherwise, as COLMAP does for a planar
    pair, the homography's one physically valid decomposition (and the inliers of both). Raises
    :class:`ReconstructionError` naming ``label`` when the camera did not translate, when the
    focal length is a guess (``focal_known`` false: two views of a plane cannot determine it,
    and the decomposition depends on it), or when no decomposition or two different ones put
    the plane in front of both cameras (a planar scene with little parallax).
    """
    H, h_mask = fit_homography(pa, pb, HOMOGRAPHY_ERROR_SCALE * max_error_px)
    e_count = max(int(e_mask.sum()), 1)
    ratio = float(h_mask.sum()) / e_count
    info = {'homography_inlier_ratio': round(ratio, 3), 'pose_source': 'essential matrix'}
    if H is None or ratio < PLANAR_RATIO:
        return b_from_a, e_mask, info
    what = (f'{int(h_mask.sum())} of the {len(pa)} matches fit one homography, '
            f'{int(e_mask.sum())} the essential matrix')
    poses = homography_poses(H, Ka, Kb, normalised(pa[h_mask], Ka))
    baseline = max((float(np.linalg.norm(p.t)) for p in poses if p.front_fraction > 0),
                   default=0.0)
    parallax = float(np.degrees(np.arctan(baseline)))
    if parallax < min_parallax_deg:
        raise ReconstructionError(
            f'{label}: insufficient parallax ({what}; the baseline is {100 * baseline:.1f} % of '
            f'the distance to the plane, {parallax:.2f} deg, need {min_parallax_deg}): the '
            'camera did not move or only rotated')
    if not focal_known:
        raise ReconstructionError(
            f'{label}: planar scene ({what}: a plane, or a camera that only turned) and an '
            'unknown focal length: two such views cannot determine it, and the relative pose '
            'depends on it (with the guessed one the camera turned by '
            f'{rotation_deg(b_from_a[:3, :3]):.1f} deg, which nothing can confirm); give the '
            'intrinsics (camera_info / --intrinsics), add views, or include objects off the '
            'plane')
    valid = [p for p in poses if p.front_fraction >= PLANE_FRONT_FRACTION]
    if not valid:
        raise ReconstructionError(
            f'{label}: planar scene ({what}), but no relative pose puts the plane in front of '
            f'both cameras (at best {100 * poses[0].front_fraction:.0f} % of the matches): '
            'the geometry is degenerate or the focal length is far from the truth')
    if any(not _agree(p.b_from_a(), valid[0].b_from_a()) for p in valid[1:]):
        turns = ' and '.join(f'{rotation_deg(p.R):.1f}' for p in valid[:2])
        raise ReconstructionError(
            f'{label}: planar scene with little parallax off the plane ({what}): two relative '
            f'poses fit the matches equally (rotations of {turns} deg, each with the plane in '
            'front of both cameras), so the pose is ambiguous (the essential matrix picked '
            f'{rotation_deg(b_from_a[:3, :3]):.1f} deg). Move the camera parallel to the '
            'plane, add views, or include objects off the plane')
    best = valid[0]
    drot, dtrans = pose_difference(b_from_a, best.b_from_a())
    info.update({'pose_source': 'homography decomposition (planar scene)',
                 'homography_rotation_deg': round(rotation_deg(best.R), 3),
                 'essential_vs_homography_deg': [round(drot, 3), round(dtrans, 3)]})
    return best.b_from_a(), h_mask | e_mask, info


def triangulate(ma: np.ndarray, mb: np.ndarray, b_from_a: np.ndarray
                ) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """
    Triangulate normalised matches ``[N, 2]`` linearly (OpenCV DLT) in camera a's frame.

    Returns ``(X [N, 3], parallax [N] degrees, in_front [N] bool)``, where ``in_front`` means
    positive depth in both cameras.
    """
    import cv2

    X = cv2.triangulatePoints(np.eye(3, 4), b_from_a[:3], ma.T, mb.T)
    X = (X[:3] / X[3]).T
    centre_b = -b_from_a[:3, :3].T @ b_from_a[:3, 3]
    rays_a = X / np.linalg.norm(X, axis=1, keepdims=True)
    rays_b = (X - centre_b) / np.linalg.norm(X - centre_b, axis=1, keepdims=True)
    parallax = np.degrees(np.arccos(np.clip((rays_a * rays_b).sum(1), -1, 1)))
    in_front = (X[:, 2] > 0) & ((X @ b_from_a[:3, :3].T + b_from_a[:3, 3])[:, 2] > 0)
    return X, parallax, in_front


def check_cheirality(in_front: np.ndarray, parallax: np.ndarray, min_parallax_deg: float,
                     label: str, focal_known: bool = True) -> None:
    """
    Refuse a pose that puts fewer than :data:`MIN_FRONT_FRACTION` of its points in front.

    Only points whose rays meet at half ``min_parallax_deg`` or more count: a point near
    infinity lands on either side of the cameras with pixel noise (or a guessed focal length),
    while a point with clear parallax behind a camera contradicts the pose.
    """
    measurable = parallax >= 0.5 * min_parallax_deg
    share = float(in_front[measurable].mean()) if measurable.any() else 1.0
    if share < MIN_FRONT_FRACTION:
        hint = ('' if focal_known else
                ' (or the guessed focal length is far off: give the intrinsics)')
        raise ReconstructionError(
            f'{label}: the relative pose fails the cheirality check: only {100 * share:.0f} % '
            f'of the {int(measurable.sum())} triangulated matches with parallax lie in front of '
            f'both cameras (need {100 * MIN_FRONT_FRACTION:.0f} %): the geometry is '
            f'degenerate{hint}')


def check_rotation(b_from_a: np.ndarray, pa: np.ndarray, pb: np.ndarray,
                   image_size: Tuple[int, int], label: str) -> None:
    """
    Refuse a large relative rotation between views whose matched features hardly moved.

    Turning the camera (about any axis, the optical axis included) by more than
    :data:`LARGE_ROTATION_DEG` moves features by a sizeable share of the image; a median shift
    under :data:`MIN_SHIFT_FOR_LARGE_ROTATION` of the diagonal means near-identical viewpoints.
    """
    angle = rotation_deg(b_from_a[:3, :3])
    diagonal = float(np.hypot(*image_size))
    shift = float(np.median(np.linalg.norm(pb - pa, axis=1))) / diagonal if len(pa) else 0.0
    if angle > LARGE_ROTATION_DEG and shift < MIN_SHIFT_FOR_LARGE_ROTATION:
        raise ReconstructionError(
            f'{label}: implausible relative rotation of {angle:.1f} deg while the matched '
            f'features moved by a median {100 * shift:.1f} % of the image diagonal '
            '(near-identical viewpoints); the geometry is degenerate')
