# Copyright 2026 The AetherScan ROS Authors
# SPDX-License-Identifier: Apache-2.0
"""CroCo ViT encoder: 16x16 patch embedding, pre-norm blocks with 2D RoPE, final LayerNorm."""

from typing import Tuple

import torch
from torch import nn

from aetherscan_ros.models.fast3r.config import EncoderConfig
from aetherscan_ros.models.fast3r.layers import Block, RoPE2D


class PatchEmbed(nn.Module):
    """Conv2d patchify (no norm); tokens flattened row-major, positions ``(row, col)``."""

    def __init__(self, patch_size: int, dim: int):
        super().__init__()
        self.patch_size = patch_size
        self.proj = nn.Conv2d(3, dim, kernel_size=patch_size, stride=patch_size)

    def forward(self, img: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """
        Embed ``img`` ``[B, 3, H, W]`` to tokens ``[B, h*w, C]`` and positions ``[B, h*w, 2]``.

        Raises ``ValueError`` when H or W is not a multiple of the patch size.
        """
        b, _, height, width = img.shape
        p = self.patch_size
        if height % p or width % p or height == 0 or width == 0:
            raise ValueError(f'Fast3R input {height}x{width} (HxW) is not a positive multiple of '
                             f'the patch size {p}; preprocess the images first')
        x = self.proj(img)  # [B, C, h, w]
        h, w = x.shape[-2:]
        tokens = x.flatten(2).transpose(1, 2)
        rows = torch.arange(h, device=img.device).repeat_interleave(w)
        cols = torch.arange(w, device=img.device).repeat(h)
        pos = torch.stack([rows, cols], dim=-1)[None].expand(b, -1, -1)
        return tokens, pos


class CrocoEncoder(nn.Module):
    """The per-view ViT encoder (``encoder.*`` in the checkpoint)."""

    def __init__(self, cfg: EncoderConfig):
        super().__init__()
        self.patch_embed = PatchEmbed(cfg.patch_size, cfg.embed_dim)
        rope = RoPE2D(cfg.rope_base)
        self.enc_blocks = nn.ModuleList(
            Block(cfg.embed_dim, cfg.num_heads, cfg.mlp_ratio, qkv_bias=True, norm_eps=1e-6,
                  rope=rope)
            for _ in range(cfg.depth))
        self.enc_norm = nn.LayerNorm(cfg.embed_dim, eps=1e-6)

    def forward(self, img: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """
        Encode ``img`` ``[B, 3, H, W]`` to tokens ``[B, h*w, C]`` and positions ``[B, h*w, 2]``.

        Every view is encoded on its own (batching only stacks independent views). The RoPE
        table size comes from the patch grid (a shape, known on the host), so no layer reads
        the positions back from the device.
        """
        x, pos = self.patch_embed(img)
        p = self.patch_embed.patch_size
        max_pos = max(img.shape[-2] // p, img.shape[-1] // p)
        for block in self.enc_blocks:
            x = block(x, pos, max_pos)
        return self.enc_norm(x), pos
