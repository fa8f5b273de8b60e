# Copyright 2026 The AetherScan ROS Authors
# SPDX-License-Identifier: Apache-2.0
"""
Camera poses from TF as inputs of a backend (pose priors), and the anchor they imply.

A backend that takes pose priors (``accepts_pose_priors = True``, MapAnything) gets the TF
poses of the views before it runs, and returns its result already in the fixed frame, in
metres (``info['in_prior_frame']``). No similarity has to be fitted then: the session publishes
the result with an identity ``fixed_frame -> world_frame`` link and reports how far the
backend's camera poses are from the TF ones (:func:`prior_anchor`), a check, not a fit.

Priors are handed over only when view 0 has a TF pose and at least one other view has one
too: the model expresses every pose relative to view 0, and a single pose carries no relative
information (SPEC §5.4: it would inject a meaningless translation scale).
"""

from typing import Optional, Tuple

import numpy as np

from aetherscan_ros.core.anchoring import Anchor
from aetherscan_ros.core.geometry import rotation_angle_deg

#: ``info['world_frame']`` of a result placed by its pose priors.
PRIOR_FRAME = ('world = the fixed frame of the TF pose priors, in metres (the backend took the '
               'camera poses as inputs; no similarity fit)')
PRIOR_METHOD = 'pose priors (the backend placed the result in fixed_frame; no fit)'


def usable_priors(backend, tf_poses: Optional[np.ndarray]) -> Tuple[Optional[np.ndarray], str]:
    """
    Return ``(poses [V, 4, 4] or None, why not)`` to hand ``backend`` as pose priors.

    ``tf_poses`` are camera-to-fixed poses with NaN where the lookup failed. None (with the
    reason, '' when there were no TF poses or the backend takes none) unless ``backend`` takes
    priors, view 0 has a pose and at least one other view has one.
    """
    if tf_poses is None or not getattr(backend, 'accepts_pose_priors', False):
        return None, ''
    poses = np.asarray(tf_poses, np.float64)
    known = np.isfinite(poses.reshape(len(poses), -1)).all(axis=1)
    if not known[0]:
        return None, 'view 0 has no TF pose (the model needs the reference view posed)'
    if known.sum() < 2:
        return None, 'only view 0 has a TF pose (one pose gives no relative motion)'
    return poses, ''


def prior_anchor(result_c2w: np.ndarray, tf_c2w: np.ndarray) -> Anchor:
    """
    Return the accepted identity anchor of a result placed by pose priors, with its residuals.

    ``result_c2w`` ``[V, 4, 4]`` are the backend's camera poses, already in the fixed frame;
    ``tf_c2w`` ``[V, 4, 4]`` the TF ones (NaN where missing). The residuals (camera centres in
    metres, orientations in degrees) say how closely the backend honoured the priors.
    """
    recon = np.asarray(result_c2w, np.float64)
    tf = np.asarray(tf_c2w, np.float64)
    both = (np.isfinite(recon.reshape(len(recon), -1)).all(axis=1)
            & np.isfinite(tf.reshape(len(tf), -1)).all(axis=1))
    used = np.flatnonzero(both)
    rejected = tuple((int(v), 'no TF pose' if not np.isfinite(tf[v]).all() else
                      'not registered in the reconstruction')
                     for v in np.flatnonzero(~both))
    pos = np.linalg.norm(recon[used, :3, 3] - tf[used, :3, 3], axis=1)
    ang = rotation_angle_deg(recon[used, :3, :3], tf[used, :3, :3]) if len(used) else pos
    centres = tf[used, :3, 3]
    baseline = (float(np.linalg.norm(centres[:, None] - centres[None], axis=-1).max())
                if len(used) > 1 else 0.0)
    nan = float('nan')

    def stat(values, fn):
        return float(fn(values)) if len(values) else nan

    identity = np.eye(4)
    identity.flags.writeable = False
    return Anchor(True, '', 1.0, identity,
                  stat(pos, lambda v: np.sqrt(np.mean(v ** 2))), stat(pos, np.max),
                  tuple(int(v) for v in used), rejected,
                  stat(ang, lambda v: np.sqrt(np.mean(v ** 2))), stat(ang, np.max), baseline)
