# Copyright 2026 The AetherScan ROS Authors
# SPDX-License-Identifier: Apache-2.0
"""
DINOv2-style transformer layers: attention on SDPA, fused SwiGLU, LayerScale, the block.

The image encoder and the multi-view transformer share these (SPEC §4.3, §6); module names
equal the checkpoint's (``norm1``, ``attn.qkv``, ``attn.proj``, ``ls1.gamma``, ``norm2``,
``mlp.w12``, ``mlp.w3``, ``ls2.gamma``). Every LayerNorm has eps 1e-6.
"""

import contextlib

import torch
from torch import nn
import torch.nn.functional as F

from aetherscan_ros.models.mapanything.config import swiglu_hidden

NORM_EPS = 1e-6


def autocast_off(device_type: str):
    """Return a context that disables autocast on ``device_type`` (a no-op elsewhere)."""
    if device_type in ('cpu', 'cuda'):
        return torch.autocast(device_type, enabled=False)
    return contextlib.nullcontext()


def layer_norm(dim: int) -> nn.LayerNorm:
    """Return the model's LayerNorm (eps 1e-6)."""
    return nn.LayerNorm(dim, eps=NORM_EPS)


class Attention(nn.Module):
    """
    Multi-head self-attention through ``F.scaled_dot_product_attention``.

    ``qkv`` lays its output features out as ``[q | k | v]``, each split into ``num_heads``
    contiguous chunks of ``head_dim``; the softmax scale is ``head_dim ** -0.5``.
    """

    def __init__(self, dim: int, num_heads: int, qkv_bias: bool = True):
        super().__init__()
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Attend over ``x`` ``[B, T, C]``; returns ``[B, T, C]``."""
        b, t, c = x.shape
        qkv = self.qkv(x).reshape(b, t, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)  # each [B, heads, T, head_dim]
        out = F.scaled_dot_product_attention(q, k, v, scale=self.head_dim ** -0.5)
        return self.proj(out.transpose(1, 2).reshape(b, t, c))


class SwiGLU(nn.Module):
    """Fused SwiGLU FFN: ``w3(silu(a) * b)`` with ``[a | b] = w12(x)``."""

    def __init__(self, dim: int, mlp_ratio: float):
        super().__init__()
        hidden = swiglu_hidden(dim, mlp_ratio)
        self.w12 = nn.Linear(dim, 2 * hidden)
        self.w3 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the FFN to ``x`` ``[..., dim]``."""
        a, b = self.w12(x).chunk(2, dim=-1)
        return self.w3(F.silu(a) * b)


class LayerScale(nn.Module):
    """Per-channel gain ``gamma`` (``[dim]``)."""

    def __init__(self, dim: int, init_values: float = 1e-5):
        super().__init__()
        self.gamma = nn.Parameter(torch.full((dim,), float(init_values)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return ``x * gamma``."""
        return x * self.gamma


class Block(nn.Module):
    """Pre-norm block: ``x + ls1(attn(norm1(x)))`` then ``x + ls2(mlp(norm2(x)))``."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float = 4.0, qkv_bias: bool = True,
                 init_values: float = 1e-5):
        super().__init__()
        self.norm1 = layer_norm(dim)
        self.attn = Attention(dim, num_heads, qkv_bias)
        self.ls1 = LayerScale(dim, init_values)
        self.norm2 = layer_norm(dim)
        self.mlp = SwiGLU(dim, mlp_ratio)
        self.ls2 = LayerScale(dim, init_values)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the block to ``x`` ``[B, T, C]``."""
        x = x + self.ls1(self.attn(self.norm1(x)))
        return x + self.ls2(self.mlp(self.norm2(x)))
