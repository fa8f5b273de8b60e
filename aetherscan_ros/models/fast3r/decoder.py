# Copyright 2026 The AetherScan ROS Authors
# SPDX-License-Identifier: Apache-2.0
"""
The Fast3R fusion transformer: global attention over the tokens of all views.

The only positional information is a fixed 1D sin-cos image-index embedding (one vector per
view); there is no RoPE in these blocks.
"""

from typing import List, Optional, Sequence

import numpy as np
import torch
from torch import nn

from aetherscan_ros.models.fast3r.config import DecoderConfig, MAX_VIEWS
from aetherscan_ros.models.fast3r.layers import Block, inference_attention_gain


def image_index_table(num: int, dim: int) -> torch.Tensor:
    """
    Return the sin-cos table ``[num, dim]`` float32 (computed in float64, SPEC §5.2).

    Row ``p`` is ``[sin(p w_0), ..., sin(p w_{D/2-1}), cos(p w_0), ..., cos(p w_{D/2-1})]`` with
    ``w_j = 10000 ** (-j / (D/2))``.
    """
    half = dim // 2
    omega = 1.0 / 10000 ** (np.arange(half, dtype=np.float64) / half)
    angles = np.arange(num, dtype=np.float64)[:, None] * omega[None]
    table = np.concatenate([np.sin(angles), np.cos(angles)], axis=1)
    return torch.from_numpy(table.astype(np.float32))


class Fast3RDecoder(nn.Module):
    """Fusion transformer (``decoder.*`` in the checkpoint)."""

    def __init__(self, cfg: DecoderConfig):
        super().__init__()
        self.cfg = cfg
        self.decoder_embed = nn.Linear(cfg.enc_embed_dim, cfg.embed_dim)
        gain = inference_attention_gain(cfg.attn_bias_for_inference_enabled)
        # Trap 5 (SPEC §12): the blocks use LayerNorm eps 1e-5; only dec_norm uses 1e-6.
        self.dec_blocks = nn.ModuleList(
            Block(cfg.embed_dim, cfg.num_heads, cfg.mlp_ratio, cfg.qkv_bias, norm_eps=1e-5,
                  inference_scale_gain=gain)
            for _ in range(cfg.depth))
        self.dec_norm = nn.LayerNorm(cfg.embed_dim, eps=1e-6)
        self.register_buffer('image_idx_emb', image_index_table(MAX_VIEWS, cfg.embed_dim),
                             persistent=False)

    def reset_buffers(self, device=None) -> None:
        """Recompute the non-persistent embedding table (after building on the meta device)."""
        dtype = self.decoder_embed.weight.dtype
        table = image_index_table(MAX_VIEWS, self.cfg.embed_dim).to(dtype)
        self.image_idx_emb = table.to(device or self.decoder_embed.weight.device)

    def forward(self, tokens: Sequence[torch.Tensor], image_ids: Sequence[int],
                keep: Optional[Sequence[int]] = None) -> List[Optional[torch.Tensor]]:
        """
        Fuse the encoder tokens of all views.

        Parameters
        ----------
        tokens : sequence of torch.Tensor
            Per view ``[B, T_i, C_enc]``, in view order (view 0 first).
        image_ids : sequence of int
            One row of the image-index table per view, each in ``[0, 1000)``.
        keep : sequence of int, optional
            Which of the ``depth + 1`` outputs to return (default: all). Others are ``None``.

        Returns
        -------
        list of ``depth + 1`` tensors ``[B, sum T_i, *]``: index 0 is the concatenated encoder
        tokens before ``decoder_embed``; index i the output of block i; the last one is after
        ``dec_norm``.

        """
        keep = set(range(self.cfg.depth + 1) if keep is None else keep)
        x0 = torch.cat(list(tokens), dim=1)
        ids = torch.cat([torch.full((t.shape[1],), int(i), dtype=torch.long)
                         for t, i in zip(tokens, image_ids)]).to(x0.device)
        x = self.decoder_embed(x0) + self.image_idx_emb[ids].to(x0.dtype)[None]
        outputs: List[Optional[torch.Tensor]] = [x0 if 0 in keep else None]
        for i, block in enumerate(self.dec_blocks, start=1):
            x = block(x)
            if i == self.cfg.depth:
                x = self.dec_norm(x)
            outputs.append(x if i in keep else None)
        return outputs
