# Copyright 2026 The AetherScan ROS Authors
# SPDX-License-Identifier: Apache-2.0
"""
DPT pointmap heads and their output activations (pure functions).

Module names mirror the checkpoint (``dpt.act_postprocess``, ``dpt.scratch``, ``dpt.head``),
so the official state_dict loads without renaming.
"""

import contextlib
from typing import Dict, Optional, Sequence, Tuple

import torch
from torch import nn
import torch.nn.functional as F

from aetherscan_ros.models.fast3r.config import HeadConfig


def _upsample2(x: torch.Tensor, factor: float = 2.0) -> torch.Tensor:
    return F.interpolate(x, scale_factor=factor, mode='bilinear', align_corners=True)


class ResidualConvUnit(nn.Module):
    """``x + conv2(relu(conv1(relu(x))))`` with 3x3 convs (no BatchNorm, no in-place ReLU)."""

    def __init__(self, dim: int):
        super().__init__()
        self.conv1 = nn.Conv2d(dim, dim, 3, padding=1)
        self.conv2 = nn.Conv2d(dim, dim, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the unit to ``x`` ``[B, C, h, w]``."""
        return x + self.conv2(F.relu(self.conv1(F.relu(x))))


class FeatureFusionBlock(nn.Module):
    """``out_conv(up2(rcu2(a + rcu1(b))))``; ``rcu1`` is skipped when there is no ``b``."""

    def __init__(self, dim: int):
        super().__init__()
        self.out_conv = nn.Conv2d(dim, dim, 1)
        self.resConfUnit1 = ResidualConvUnit(dim)  # noqa: N815 (checkpoint name)
        self.resConfUnit2 = ResidualConvUnit(dim)  # noqa: N815 (checkpoint name)

    def forward(self, a: torch.Tensor, b: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Fuse ``a`` ``[B, C, h, w]`` with the skip ``b`` (same shape) and upsample x2."""
        out = a if b is None else a + self.resConfUnit1(b)
        return self.out_conv(_upsample2(self.resConfUnit2(out)))


class Scratch(nn.Module):
    """Projections to ``feature_dim`` and the four fusion blocks."""

    def __init__(self, layer_dims: Sequence[int], dim: int):
        super().__init__()
        self.layer1_rn = nn.Conv2d(layer_dims[0], dim, 3, padding=1, bias=False)
        self.layer2_rn = nn.Conv2d(layer_dims[1], dim, 3, padding=1, bias=False)
        self.layer3_rn = nn.Conv2d(layer_dims[2], dim, 3, padding=1, bias=False)
        self.layer4_rn = nn.Conv2d(layer_dims[3], dim, 3, padding=1, bias=False)
        # The same four modules under a second name, as in the checkpoint's state_dict
        # (trap 7, SPEC §12: the file stores only layerN_rn; weights.py restores the aliases).
        self.layer_rn = nn.ModuleList(
            [self.layer1_rn, self.layer2_rn, self.layer3_rn, self.layer4_rn])
        self.refinenet1 = FeatureFusionBlock(dim)
        self.refinenet2 = FeatureFusionBlock(dim)
        self.refinenet3 = FeatureFusionBlock(dim)
        self.refinenet4 = FeatureFusionBlock(dim)


class DPT(nn.Module):
    """Dense prediction transformer decoder: 4 token taps in, a ``[B, 4, H, W]`` map out."""

    def __init__(self, cfg: HeadConfig, tap_dims: Sequence[int]):
        super().__init__()
        dims, feat, last = cfg.dpt_layer_dims, cfg.dpt_feature_dim, cfg.dpt_last_dim
        self.patch_size = cfg.patch_size
        self.scratch = Scratch(dims, feat)
        self.head = nn.Sequential(
            nn.Conv2d(feat, feat // 2, 3, padding=1),
            nn.Upsample(scale_factor=cfg.patch_size / 8, mode='bilinear', align_corners=True),
            nn.Conv2d(feat // 2, last, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(last, 4, 1))
        self.act_postprocess = nn.ModuleList([
            nn.Sequential(nn.Conv2d(tap_dims[0], dims[0], 1),
                          nn.ConvTranspose2d(dims[0], dims[0], 4, stride=4)),
            nn.Sequential(nn.Conv2d(tap_dims[1], dims[1], 1),
                          nn.ConvTranspose2d(dims[1], dims[1], 2, stride=2)),
            nn.Sequential(nn.Conv2d(tap_dims[2], dims[2], 1)),
            nn.Sequential(nn.Conv2d(tap_dims[3], dims[3], 1),
                          nn.Conv2d(dims[3], dims[3], 3, stride=2, padding=1)),
        ])

    def forward(self, taps: Sequence[torch.Tensor], grid: Tuple[int, int]) -> torch.Tensor:
        """Decode 4 taps ``[B, h*w, C_k]`` (row-major, ``grid = (h, w)``) to ``[B, 4, H, W]``."""
        h, w = grid
        maps = [t.transpose(1, 2).reshape(t.shape[0], t.shape[2], h, w) for t in taps]
        maps = [post(m) for post, m in zip(self.act_postprocess, maps)]
        s = self.scratch
        l1, l2, l3, l4 = (s.layer1_rn(maps[0]), s.layer2_rn(maps[1]), s.layer3_rn(maps[2]),
                          s.layer4_rn(maps[3]))
        # Trap 6 (SPEC §12): refinenet4 has no skip input (its resConfUnit1 is unused) and its
        # output is cropped top-left to L3's size, which matters for odd patch grids.
        p4 = s.refinenet4(l4)[:, :, :l3.shape[2], :l3.shape[3]]
        p3 = s.refinenet3(p4, l3)
        p2 = s.refinenet2(p3, l2)
        p1 = s.refinenet1(p2, l1)
        return self.head(p1)


class PointmapHead(nn.Module):
    """One Fast3R head (``downstream_head`` or ``downstream_head_local``)."""

    def __init__(self, cfg: HeadConfig, tap_dims: Sequence[int]):
        super().__init__()
        self.dpt = DPT(cfg, tap_dims)

    def forward(self, taps: Sequence[torch.Tensor],
                grid: Tuple[int, int]) -> Dict[str, torch.Tensor]:
        """
        Return ``pts3d`` ``[B, H, W, 3]`` and ``conf`` ``[B, H, W]`` for one group of views.

        The head and its ``exp`` activations run in the head's own parameter dtype (float32
        in production) with autocast off, the taps cast up to it: in bf16 the depth would be
        quantised to 0.4-1 % before ``exp`` amplifies it (SPEC §13).
        """
        dtype = self.dpt.head[-1].weight.dtype
        with autocast_off(taps[0].device.type):
            return postprocess_pointmap(self.dpt([t.to(dtype) for t in taps], grid))


def autocast_off(device_type: str):
    """Return a context that disables autocast on ``device_type`` (a no-op elsewhere)."""
    if device_type in ('cpu', 'cuda'):
        return torch.autocast(device_type, enabled=False)
    return contextlib.nullcontext()


def exp_radial(xyz: torch.Tensor) -> torch.Tensor:
    """Apply the ``exp`` depth mode to ``[..., 3]``: ``xyz / max(|xyz|, 1e-8) * expm1(|xyz|)``."""
    d = xyz.norm(dim=-1, keepdim=True)
    return xyz / d.clamp(min=1e-8) * torch.expm1(d)


def exp_confidence(x: torch.Tensor, vmin: float = 1.0) -> torch.Tensor:
    """Confidence activation ``exp``: ``vmin + exp(x)`` (no upper clip), any shape."""
    return vmin + x.exp()


def postprocess_pointmap(out: torch.Tensor) -> Dict[str, torch.Tensor]:
    """Split a raw map ``[B, 4, H, W]`` into ``pts3d`` ``[B, H, W, 3]``, ``conf`` ``[B, H, W]``."""
    fmap = out.permute(0, 2, 3, 1)
    return {'pts3d': exp_radial(fmap[..., :3]), 'conf': exp_confidence(fmap[..., 3])}
