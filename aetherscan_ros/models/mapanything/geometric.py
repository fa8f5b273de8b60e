# Copyright 2026 The AetherScan ROS Authors
# SPDX-License-Identifier: Apache-2.0
"""
Geometric input encoders and their fusion with the image tokens (SPEC §5).

Rays (from intrinsics), depth along rays, relative pose (quaternion + normalised translation)
and the metric scales of depth and translation are each encoded to the token width, multiplied
by per-view "given" flags, added to the image patch tokens and LayerNorm-ed (``fusion``).
"""

from dataclasses import dataclass
from typing import Dict, Optional, Sequence

import torch
from torch import nn
import torch.nn.functional as F

from aetherscan_ros.models.mapanything.layers import layer_norm
from aetherscan_ros.models.mapanything.priors import (
    depth_input_map, depth_scale, relative_poses, translation_scale)


class ResidualBlock(nn.Module):
    """``gelu(conv2(gelu(conv1(x))) + shortcut(x))``; 3x3 convs, 1x1 shortcut if widths differ."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1)
        self.shortcut = nn.Conv2d(cin, cout, 1) if cin != cout else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the block to ``x`` ``[B, C, h, w]``."""
        return F.gelu(self.conv2(F.gelu(self.conv1(x))) + self.shortcut(x))


class DenseEncoder(nn.Module):
    """Per-pixel input ``[B, C, H, W]`` -> tokens ``[B, h*w, D]`` (unshuffle, convs, LN)."""

    def __init__(self, in_chans: int, dims: Sequence[int], out_dim: int, patch: int):
        super().__init__()
        self.patch = patch
        self.conv_in = nn.Conv2d(in_chans * patch * patch, dims[0], 3, padding=1)
        self.encoder = nn.Sequential(ResidualBlock(dims[0], dims[1]),
                                     ResidualBlock(dims[1], dims[2]),
                                     nn.Conv2d(dims[2], out_dim, 1))
        self.norm_layer = layer_norm(out_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Encode ``x`` ``[B, C, H, W]`` to ``[B, h*w, D]`` (row-major)."""
        x = self.encoder(self.conv_in(F.pixel_unshuffle(x, self.patch)))
        return self.norm_layer(x.flatten(2).transpose(1, 2))


class GlobalEncoder(nn.Module):
    """Per-view vector ``[B, C]`` -> ``[B, D]``: 4 Linear layers with GELU between, then LN."""

    def __init__(self, in_chans: int, dims: Sequence[int], out_dim: int):
        super().__init__()
        # The nesting reproduces the checkpoint keys encoder.0.0.0.0, encoder.0.0.1, ...
        first = nn.Sequential(nn.Linear(in_chans, dims[0]), nn.GELU())
        second = nn.Sequential(first, nn.Linear(dims[0], dims[1]), nn.GELU())
        third = nn.Sequential(second, nn.Linear(dims[1], dims[2]), nn.GELU())
        self.encoder = nn.Sequential(third, nn.Linear(dims[2], out_dim))
        self.norm_layer = layer_norm(out_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Encode ``x`` ``[B, C]`` to ``[B, D]``."""
        return self.norm_layer(self.encoder(x))


@dataclass
class GeometricInputs:
    """
    The priors of one scene of V views, already in the network's conventions.

    ``rays`` ``[V, H, W, 3]`` unit rays (zeros where not given), ``depth`` ``[V, H, W]`` range
    along the ray (zeros where not given), ``quats`` ``[V, 4]`` / ``trans`` ``[V, 3]``
    cam->world poses; ``has_*`` and ``metric`` are ``[V]`` bool. ``None`` means no view has it.
    """

    has_rays: torch.Tensor
    has_depth: torch.Tensor
    has_pose: torch.Tensor
    metric_depth: torch.Tensor
    metric_pose: torch.Tensor
    rays: Optional[torch.Tensor] = None
    depth: Optional[torch.Tensor] = None
    quats: Optional[torch.Tensor] = None
    trans: Optional[torch.Tensor] = None


def encode_priors(enc, geo: GeometricInputs, dtype: torch.dtype,
                  record: Optional[Dict[str, torch.Tensor]] = None) -> Optional[torch.Tensor]:
    """
    Return the sum of the flagged prior features ``[V, h*w or 1, D]``, or None if none is given.

    ``enc`` holds the six encoders as attributes (the model: ``ray_dirs_encoder``,
    ``depth_encoder``, ``depth_scale_encoder``, ``cam_rot_encoder``, ``cam_trans_encoder``,
    ``cam_trans_scale_encoder``). A modality no view has (``None`` in ``geo``) is skipped:
    its features would all be multiplied by zero. ``record`` (optional) receives the encoder
    inputs and unflagged outputs under the fixture names (``geo_*_encoder_in/out``).
    """
    total = None

    def add(feat, flag, name, inputs):
        nonlocal total
        if record is not None:
            record[f'geo_{name}_in'] = inputs
            record[f'geo_{name}_out'] = feat
        feat = feat * flag.to(feat.dtype).view(-1, 1, 1)
        total = feat if total is None else total + feat

    if geo.rays is not None:
        rays = geo.rays.to(dtype).permute(0, 3, 1, 2)
        add(enc.ray_dirs_encoder(rays), geo.has_rays, 'ray_dirs_encoder', rays)
    if geo.depth is not None:
        depth = geo.depth.to(dtype)
        scale = torch.where(geo.has_depth, depth_scale(depth), torch.zeros((), dtype=dtype,
                                                                           device=depth.device))
        dmap = depth_input_map(depth, torch.clamp(scale, min=1e-8))
        add(enc.depth_encoder(dmap), geo.has_depth, 'depth_encoder', dmap)
        log_scale = torch.log(scale + 1e-8)[:, None]
        add(enc.depth_scale_encoder(log_scale)[:, None], geo.has_depth & geo.metric_depth,
            'depth_scale_encoder', log_scale)
    if geo.quats is not None:
        q_rel, t_rel = relative_poses(geo.quats.to(dtype), geo.trans.to(dtype), geo.has_pose)
        f = translation_scale(t_rel)
        t_norm = t_rel / f
        log_f = torch.log(f + 1e-8).expand(t_rel.shape[0], 1)
        add(enc.cam_rot_encoder(q_rel)[:, None], geo.has_pose, 'cam_rot_encoder', q_rel)
        add(enc.cam_trans_encoder(t_norm)[:, None], geo.has_pose, 'cam_trans_encoder', t_norm)
        add(enc.cam_trans_scale_encoder(log_f)[:, None], geo.has_pose & geo.metric_pose,
            'cam_trans_scale_encoder', log_f)
    return total
