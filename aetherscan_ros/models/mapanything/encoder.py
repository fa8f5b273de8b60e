# Copyright 2026 The AetherScan ROS Authors
# SPDX-License-Identifier: Apache-2.0
"""
The image encoder: DINOv2 ViT (g/14 for V1.1) built locally, truncated, no final norm.

Never torch.hub (SPEC §13.1): the architecture is built here and the weights come from the
MapAnything checkpoint (keys ``encoder.model.*``). No registers, no mask token, no final
LayerNorm; only the first ``keep_first_n_layers`` blocks exist (SPEC §4).
"""

from typing import Tuple

import torch
from torch import nn
import torch.nn.functional as F

from aetherscan_ros.models.mapanything.config import MapAnythingConfig
from aetherscan_ros.models.mapanything.layers import Block


class PatchEmbed(nn.Module):
    """Conv2d patchify (kernel = stride = patch); keys ``patch_embed.proj.*``."""

    def __init__(self, patch: int, dim: int):
        super().__init__()
        self.proj = nn.Conv2d(3, dim, patch, stride=patch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map ``[N, 3, H, W]`` to row-major tokens ``[N, h*w, C]``."""
        return self.proj(x).flatten(2).transpose(1, 2)


def interpolate_pos_embed(pos_embed: torch.Tensor, h: int, w: int, square: bool,
                          offset: float = 0.1) -> torch.Tensor:
    """
    Resample the learned table ``[1, 1 + M*M, C]`` to an ``h x w`` patch grid (SPEC §4.2).

    Unchanged when ``h*w == M*M`` and the image is square; otherwise bicubic (A = -0.75,
    ``align_corners=False``) with the scale factors ``(h + offset) / M`` and
    ``(w + offset) / M``, computed in float32 (float64 for a float64 table). Returns
    ``[1, 1 + h*w, C]`` in the table's dtype (row 0 = CLS).
    """
    n = pos_embed.shape[1] - 1
    side = int(round(n ** 0.5))
    if h * w == n and square:
        return pos_embed
    work = torch.float64 if pos_embed.dtype == torch.float64 else torch.float32
    table = pos_embed.to(work)
    dim = table.shape[-1]
    grid = table[:, 1:].reshape(1, side, side, dim).permute(0, 3, 1, 2)
    grid = F.interpolate(grid, scale_factor=((h + offset) / side, (w + offset) / side),
                         mode='bicubic', align_corners=False)
    if tuple(grid.shape[-2:]) != (h, w):  # pragma: no cover - floor(M * s) == h for s < 1e6
        raise RuntimeError(f'positional embedding resampled to {tuple(grid.shape[-2:])}, '
                           f'expected {(h, w)}')
    grid = grid.permute(0, 2, 3, 1).reshape(1, h * w, dim)
    return torch.cat([table[:, :1], grid], dim=1).to(pos_embed.dtype)


class DinoV2(nn.Module):
    """The kept part of a DINOv2 ViT: patch embedding, CLS, position table, blocks."""

    def __init__(self, config: MapAnythingConfig):
        super().__init__()
        dim, patch = config.enc_dim, config.patch_size
        self.patch_size = patch
        self.offset = config.interpolate_offset
        self.patch_embed = PatchEmbed(patch, dim)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        side = config.img_size // patch
        self.pos_embed = nn.Parameter(torch.zeros(1, 1 + side * side, dim))
        self.blocks = nn.ModuleList(
            Block(dim, config.enc_heads, config.enc_mlp_ratio, qkv_bias=True, init_values=1.0)
            for _ in range(config.enc_layers))

    def forward(self, images: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """
        Encode ``[N, 3, H, W]`` (sides multiples of the patch) to tokens.

        Returns the patch tokens ``[N, h*w, C]`` (row-major) and the CLS token ``[N, C]``,
        both raw outputs of the last kept block.
        """
        n, _, height, width = images.shape
        h, w = height // self.patch_size, width // self.patch_size
        x = self.patch_embed(images)
        # Under autocast the patch tokens come out in half precision and the CLS token in
        # float32: cat promotes, so the residual stream stays float32 as upstream's does.
        x = torch.cat([self.cls_token.expand(n, -1, -1), x], dim=1)
        pos = interpolate_pos_embed(self.pos_embed, h, w, height == width, self.offset)
        x = x + pos.to(x.dtype)
        for block in self.blocks:
            x = block(x)
        return x[:, 1:], x[:, 0]


class ImageEncoder(nn.Module):
    """Wrapper whose ``model`` holds the ViT (checkpoint prefix ``encoder.model.``)."""

    def __init__(self, config: MapAnythingConfig):
        super().__init__()
        self.model = DinoV2(config)

    def forward(self, images: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """See :meth:`DinoV2.forward`."""
        return self.model(images)
