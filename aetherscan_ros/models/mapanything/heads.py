# Copyright 2026 The AetherScan ROS Authors
# SPDX-License-Identifier: Apache-2.0
"""
Prediction heads (DPT dense head, pose head, scale head) and their adaptors (SPEC §7).

Module names mirror the checkpoint: ``dense_head.0`` (DPT features: ``input_process``,
``scratch.refinenet1..4``), ``dense_head.1`` (regressor ``conv1``, ``conv2``), ``pose_head``,
``scale_head``. The adaptors are pure functions.
"""

from typing import Dict, Sequence, Tuple

import torch
from torch import nn
import torch.nn.functional as F


class ResidualConvUnit(nn.Module):
    """``x + conv2(relu(conv1(relu(x))))`` with 3x3 convs (no in-place ReLU)."""

    def __init__(self, dim: int):
        super().__init__()
        self.conv1 = nn.Conv2d(dim, dim, 3, padding=1)
        self.conv2 = nn.Conv2d(dim, dim, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the unit to ``x`` ``[B, C, h, w]``."""
        return x + self.conv2(F.relu(self.conv1(F.relu(x))))


class FusionBlock(nn.Module):
    """``out_conv(up2(rcu2(a + rcu1(b))))``; the first block (no ``b``) has no ``rcu1``."""

    def __init__(self, dim: int, with_skip: bool = True):
        super().__init__()
        if with_skip:
            self.resConfUnit1 = ResidualConvUnit(dim)  # noqa: N815 (checkpoint name)
        self.resConfUnit2 = ResidualConvUnit(dim)  # noqa: N815 (checkpoint name)
        self.out_conv = nn.Conv2d(dim, dim, 1)

    def forward(self, a: torch.Tensor, b: torch.Tensor = None) -> torch.Tensor:
        """Fuse ``a`` ``[B, C, h, w]`` with the skip ``b`` (same shape); upsample x2."""
        out = a if b is None else a + self.resConfUnit1(b)
        out = F.interpolate(self.resConfUnit2(out), scale_factor=2, mode='bilinear',
                            align_corners=True)
        return self.out_conv(out)


class Scratch(nn.Module):
    """The four fusion blocks (``refinenet4`` has no skip input)."""

    def __init__(self, dim: int):
        super().__init__()
        self.refinenet1 = FusionBlock(dim)
        self.refinenet2 = FusionBlock(dim)
        self.refinenet3 = FusionBlock(dim)
        self.refinenet4 = FusionBlock(dim, with_skip=False)


class DPTFeatures(nn.Module):
    """Reassemble 4 token taps to 4 scales, project to ``feature_dim``, fuse to ``8h x 8w``."""

    def __init__(self, tap_dim: int, layer_dims: Sequence[int], dim: int):
        super().__init__()
        d0, d1, d2, d3 = layer_dims
        resample = [
            nn.Sequential(nn.Conv2d(tap_dim, d0, 1), nn.ConvTranspose2d(d0, d0, 4, stride=4)),
            nn.Sequential(nn.Conv2d(tap_dim, d1, 1), nn.ConvTranspose2d(d1, d1, 2, stride=2)),
            nn.Sequential(nn.Conv2d(tap_dim, d2, 1)),
            nn.Sequential(nn.Conv2d(tap_dim, d3, 1), nn.Conv2d(d3, d3, 3, stride=2, padding=1)),
        ]
        self.input_process = nn.ModuleList(
            nn.Sequential(r, nn.Conv2d(c, dim, 3, padding=1, bias=False))
            for r, c in zip(resample, layer_dims))
        self.scratch = Scratch(dim)

    def forward(self, taps: Sequence[torch.Tensor]) -> torch.Tensor:
        """Map 4 taps ``[B, C, h, w]`` to features ``[B, feature_dim, 8h, 8w]``."""
        l1, l2, l3, l4 = (proc(t) for proc, t in zip(self.input_process, taps))
        s = self.scratch
        # refinenet4's output is cropped top-left to L3's size (odd patch grids).
        p4 = s.refinenet4(l4)[:, :, :l3.shape[2], :l3.shape[3]]
        p3 = s.refinenet3(p4, l3)
        p2 = s.refinenet2(p3, l2)
        return s.refinenet1(p2, l1)


class DPTRegressor(nn.Module):
    """``conv1`` 3x3, bilinear resize to exactly ``(H, W)``, 3x3 + ReLU + 1x1 to the channels."""

    def __init__(self, dim: int, out_dim: int):
        super().__init__()
        hidden = dim // 2
        self.conv1 = nn.Conv2d(dim, hidden, 3, padding=1)
        self.conv2 = nn.Sequential(nn.Conv2d(hidden, hidden, 3, padding=1), nn.ReLU(),
                                   nn.Conv2d(hidden, out_dim, 1))

    def forward(self, x: torch.Tensor, size: Tuple[int, int]) -> torch.Tensor:
        """Map ``[B, feature_dim, 8h, 8w]`` to the raw dense output ``[B, out_dim, H, W]``."""
        x = F.interpolate(self.conv1(x), size=size, mode='bilinear', align_corners=True)
        return self.conv2(x)


class PoseResBlock(nn.Module):
    """``x + relu(c3(relu(c2(relu(c1(x))))))`` with 1x1 convs."""

    def __init__(self, dim: int):
        super().__init__()
        self.res_conv1 = nn.Conv2d(dim, dim, 1)
        self.res_conv2 = nn.Conv2d(dim, dim, 1)
        self.res_conv3 = nn.Conv2d(dim, dim, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the block to ``x`` ``[B, C, h, w]``."""
        y = F.relu(self.res_conv1(x))
        return x + F.relu(self.res_conv3(F.relu(self.res_conv2(y))))


class PoseHead(nn.Module):
    """Last tap's patch tokens ``[B, C, h, w]`` -> raw ``[B, 7]`` = translation (3), quat (4)."""

    def __init__(self, in_dim: int, hidden: int, blocks: int = 2, rot_dim: int = 4):
        super().__init__()
        self.proj = nn.Conv2d(in_dim, hidden, 1)
        self.res_conv = nn.ModuleList(PoseResBlock(hidden) for _ in range(blocks))
        self.more_mlps = nn.Sequential(nn.Linear(hidden, hidden), nn.ReLU(),
                                       nn.Linear(hidden, hidden), nn.ReLU())
        self.fc_t = nn.Linear(hidden, 3)
        self.fc_rot = nn.Linear(hidden, rot_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return ``[B, 3 + rot_dim]``."""
        x = self.proj(x)
        for block in self.res_conv:
            x = block(x)
        x = self.more_mlps(x.mean(dim=(2, 3)))
        return torch.cat([self.fc_t(x), self.fc_rot(x)], dim=-1)


class ScaleHead(nn.Module):
    """Normalised scale token ``[B, C]`` -> raw log-scale ``[B, 1]``."""

    def __init__(self, in_dim: int, hidden: int):
        super().__init__()
        self.proj = nn.Linear(in_dim, hidden)
        self.mlp = nn.Sequential(nn.Sequential(nn.Linear(hidden, hidden), nn.ReLU()),
                                 nn.Sequential(nn.Linear(hidden, hidden), nn.ReLU()))
        self.output_proj = nn.Linear(hidden, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return ``[B, 1]``."""
        return self.output_proj(self.mlp(self.proj(x)))


def dense_adaptor(raw: torch.Tensor) -> Dict[str, torch.Tensor]:
    """
    Split the raw dense map ``[B, 6, H, W]`` (SPEC §7.2).

    Returns ``ray_directions`` ``[B, H, W, 3]`` (unit), ``depth_along_ray`` ``[B, H, W, 1]``
    (``exp``), ``conf`` ``[B, H, W]`` (``1 + exp``), ``non_ambiguous_mask_logits`` and
    ``non_ambiguous_mask`` ``[B, H, W]`` (logit > 0).
    """
    fmap = raw.permute(0, 2, 3, 1)
    rays = fmap[..., :3]
    rays = rays / torch.clamp(torch.linalg.norm(rays, dim=-1, keepdim=True), min=1e-8)
    logits = fmap[..., 5]
    return {'ray_directions': rays,
            'depth_along_ray': torch.clamp(fmap[..., 3:4].exp(), min=0.0),
            'conf': 1.0 + fmap[..., 4].exp(),
            'non_ambiguous_mask_logits': logits,
            'non_ambiguous_mask': torch.sigmoid(logits) > 0.5}


def pose_adaptor(raw: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    """Split ``[B, 7]`` into translation ``[B, 3]`` and the unit quaternion ``[B, 4]`` (xyzw)."""
    quats = raw[:, 3:]
    quats = quats / torch.clamp(torch.linalg.norm(quats, dim=-1, keepdim=True), min=1e-8)
    return raw[:, :3], quats


def scale_adaptor(raw: torch.Tensor) -> torch.Tensor:
    """Return the metric scale factor ``clip(exp(raw), 1e-8)`` (same shape)."""
    return torch.clamp(raw.exp(), min=1e-8)
