# Copyright 2026 The AetherScan ROS Authors
# SPDX-License-Identifier: Apache-2.0
"""
Multi-view confidence (``infer(use_multiview_confidence=True)``, SPEC §8.5; off by default).

Each pixel's confidence becomes the fraction of the *other* views in which its predicted world
point, projected with that view's predicted pose and intrinsics onto the nearest pixel, lands
in front of the camera, inside the image, and at a z-depth that agrees with that view's
predicted ``depth_z`` within ``abs_thresh + rel_thresh * depth``. SPEC §8.5 gives only this
sentence; the nearest-pixel lookup and using the looked-up depth for the relative threshold
are this port's reading (no parity fixture covers the option).
"""

from typing import Dict

import numpy as np
import torch


def multiview_confidence(out: Dict[str, torch.Tensor], abs_thresh: float = 0.02,
                         rel_thresh: float = 0.02) -> torch.Tensor:
    """
    Return the multi-view confidence ``[V, H, W]`` from host outputs of all V views.

    ``out`` holds ``pts3d`` ``[V, H, W, 3]`` (unmasked), ``camera_poses`` ``[V, 4, 4]``
    (cam->world), ``intrinsics`` ``[V, 3, 3]`` and ``depth_z`` ``[V, H, W, 1]``. With a single
    view the confidence is returned unchanged.
    """
    views, height, width = out['conf'].shape
    if views < 2:
        return out['conf']
    points = out['pts3d'].numpy()
    poses = out['camera_poses'].numpy()
    ks = out['intrinsics'].numpy()
    depth = out['depth_z'].numpy()[..., 0]
    agree = np.zeros((views, height, width), dtype=points.dtype)
    for j in range(views):
        rot, trans, k = poses[j, :3, :3], poses[j, :3, 3], ks[j]
        cam = (points - trans) @ rot  # R^T (X - t), all views at once: [V, H, W, 3]
        z = cam[..., 2]
        with np.errstate(divide='ignore', invalid='ignore'):
            u = np.rint(k[0, 0] * cam[..., 0] / z + k[0, 2])
            v = np.rint(k[1, 1] * cam[..., 1] / z + k[1, 2])
        inside = (z > 0) & (u >= 0) & (u < width) & (v >= 0) & (v < height)
        ui = np.where(inside, u, 0).astype(np.int64)
        vi = np.where(inside, v, 0).astype(np.int64)
        seen = depth[j][vi, ui]
        ok = inside & (np.abs(z - seen) <= abs_thresh + rel_thresh * seen)
        ok[j] = False  # a view does not vote for itself
        agree += ok
    return torch.from_numpy(agree / (views - 1))
