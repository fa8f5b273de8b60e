# Copyright 2026 The AetherScan ROS Authors
# SPDX-License-Identifier: Apache-2.0
"""
The multi-view transformer: alternating global / per-view attention (SPEC §6).

Sequence of one scene: for each view its ``h*w`` fused patch tokens then its raw CLS token; at
the end the learned scale token. View 0 (the reference) gets a constant embedding added.
Even blocks attend over everything, odd blocks within each view (scale token set aside).
Checkpoint prefix ``info_sharing.``: ``self_attention_blocks.N``, ``norm``, ``view_pos_table``.
"""

from typing import Dict, List, Optional, Sequence

import torch
from torch import nn

from aetherscan_ros.models.mapanything.layers import Block, layer_norm


def reference_view_embedding(dim: int) -> torch.Tensor:
    """Return the sin/cos row of position 0: ``[1, dim]`` = (0, 1, 0, 1, ...)."""
    row = torch.zeros(1, dim)
    row[0, 1::2] = 1.0
    return row


class AlternatingAttention(nn.Module):
    """Blocks alternating global and frame attention, then a final LayerNorm."""

    def __init__(self, dim: int, depth: int, num_heads: int, mlp_ratio: float = 4.0,
                 qkv_bias: bool = True, init_values: float = 1e-5):
        super().__init__()
        self.self_attention_blocks = nn.ModuleList(
            Block(dim, num_heads, mlp_ratio, qkv_bias, init_values) for _ in range(depth))
        self.norm = layer_norm(dim)
        self.register_buffer('view_pos_table', reference_view_embedding(dim), persistent=True)

    def reset_buffers(self, device=None) -> None:
        """Recompute ``view_pos_table`` (after building on the meta device)."""
        table = reference_view_embedding(self.norm.normalized_shape[0])
        self.view_pos_table = table.to(device or 'cpu', self.norm.weight.dtype)

    def forward(self, patches: torch.Tensor, cls: torch.Tensor, scale_token: torch.Tensor,
                taps: Sequence[int], record: Optional[Dict[str, object]] = None
                ) -> List[torch.Tensor]:
        """
        Mix the views of one scene.

        Parameters
        ----------
        patches : torch.Tensor
            Fused patch tokens ``[V, T, C]`` (``T = h*w``).
        cls : torch.Tensor
            Raw encoder CLS tokens ``[V, C]``.
        scale_token : torch.Tensor
            ``[C]``.
        taps : sequence of int
            Block indices (0-based) whose normalised outputs are returned.
        record : dict, optional
            Receives ``mv_input`` ``[1, S, C]`` and ``mv_block_outputs`` (list of ``[1, S, C]``).

        Returns
        -------
        list of ``[1, S, C]`` normalised sequences, one per tap (``S = V*(T+1) + 1``).

        """
        views, tokens, dim = patches.shape
        x = torch.cat([patches, cls[:, None].to(patches.dtype)], dim=1)  # [V, T+1, C]
        ref = self.view_pos_table.to(x.dtype)
        x = torch.cat([x[:1] + ref, x[1:]], dim=0)
        x = torch.cat([x.reshape(1, views * (tokens + 1), dim),
                       scale_token.view(1, 1, dim).to(x.dtype)], dim=1)
        if record is not None:
            record['mv_input'] = x
            record['mv_block_outputs'] = []
        outputs = []
        last = max(taps)
        for index, block in enumerate(self.self_attention_blocks):
            if index > last:
                break
            if index % 2 == 0:
                x = block(x)
            else:
                frames = x[:, :-1].reshape(views, tokens + 1, dim)
                x = torch.cat([block(frames).reshape(1, views * (tokens + 1), dim),
                               x[:, -1:]], dim=1)
            if record is not None:
                record['mv_block_outputs'].append(x)
            if index in taps:
                outputs.append(self.norm(x))
        return outputs
