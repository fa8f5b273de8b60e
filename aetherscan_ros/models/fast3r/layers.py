# Copyright 2026 The AetherScan ROS Authors
# SPDX-License-Identifier: Apache-2.0
"""Transformer building blocks: 2D RoPE, attention on SDPA, MLP and the pre-norm block."""

import math
from typing import Dict, Optional, Tuple

import torch
from torch import nn
import torch.nn.functional as F


class RoPE2D(nn.Module):
    """
    2D rotary position embedding in plain torch (never the CUDA cuRoPE kernel, SPEC §12.9).

    The first half of each head vector is rotated by the patch row, the second half by the
    column; each half uses the "rotate-half" layout. Angles are computed in float32 and cast to
    the token dtype before cos/sin, as the reference does, so float64 runs match it to 1e-14.
    """

    def __init__(self, base: float = 100.0):
        super().__init__()
        self.base = float(base)
        self._cache: Dict[Tuple, Tuple[torch.Tensor, torch.Tensor]] = {}

    def _cos_sin(self, dim: int, max_pos: int, device, dtype):
        key = (dim, max_pos, device, dtype)
        if key not in self._cache:
            inv_freq = 1.0 / (self.base ** (
                torch.arange(0, dim, 2, device=device).float() / dim))
            pos = torch.arange(max_pos, device=device, dtype=inv_freq.dtype)
            angles = torch.outer(pos, inv_freq)
            angles = torch.cat([angles, angles], dim=-1)  # [max_pos, dim]
            # The reference casts the float32 angles to the token dtype before cos/sin (this
            # matters at 1e-9 in float64). For half types we take cos/sin in float32 and cast
            # the results instead: an angle rounded to bf16 would be off by up to 0.1 rad.
            work = dtype if dtype in (torch.float32, torch.float64) else torch.float32
            angles = angles.to(work)
            self._cache[key] = (angles.cos().to(dtype), angles.sin().to(dtype))
        return self._cache[key]

    @staticmethod
    def _rotate_1d(x, pos, cos, sin):
        # x: [B, heads, T, d]; pos: [B, T] -> cos/sin rows [B, 1, T, d]
        cos = F.embedding(pos, cos)[:, None]
        sin = F.embedding(pos, sin)[:, None]
        half = x.shape[-1] // 2
        rotated = torch.cat([-x[..., half:], x[..., :half]], dim=-1)
        return x * cos + rotated * sin

    def forward(self, x: torch.Tensor, pos: torch.Tensor,
                max_pos: Optional[int] = None) -> torch.Tensor:
        """
        Rotate ``x`` ``[B, heads, T, D]`` by the integer positions ``pos`` ``[B, T, 2]``.

        ``max_pos`` (a Python int greater than every entry of ``pos``) sizes the cos/sin
        table. Callers that know the patch grid pass it: without it ``pos.max()`` is read
        back to the host, a GPU->CPU synchronisation in every attention layer.
        """
        dim = x.shape[-1] // 2
        if max_pos is None:
            max_pos = int(pos.max()) + 1
        cos, sin = self._cos_sin(dim, max_pos, x.device, x.dtype)
        rows, cols = x[..., :dim], x[..., dim:]
        rows = self._rotate_1d(rows, pos[..., 0], cos, sin)
        cols = self._rotate_1d(cols, pos[..., 1], cos, sin)
        return torch.cat([rows, cols], dim=-1)


class Attention(nn.Module):
    """
    Multi-head self-attention through ``F.scaled_dot_product_attention``.

    ``qkv`` lays its output features out as ``[q | k | v]``, each split into ``num_heads``
    contiguous chunks. ``rope`` (optional) rotates q and k.
    """

    def __init__(self, dim: int, num_heads: int, qkv_bias: bool = True,
                 rope: Optional[RoPE2D] = None, inference_scale_gain: float = 1.0):
        super().__init__()
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)
        self.rope = rope
        # Multiplies the softmax scale in eval mode only (the fusion transformer's
        # attn_bias_for_inference_enabled flag, SPEC §2); 1.0 everywhere else.
        self.inference_scale_gain = inference_scale_gain

    def forward(self, x: torch.Tensor, pos: Optional[torch.Tensor] = None,
                max_pos: Optional[int] = None) -> torch.Tensor:
        """Attend over ``x`` ``[B, T, C]``; RoPE needs ``pos`` ``[B, T, 2]`` (and ``max_pos``)."""
        b, t, c = x.shape
        qkv = self.qkv(x).reshape(b, t, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)  # each [B, heads, T, head_dim]
        if self.rope is not None:
            q = self.rope(q, pos, max_pos)
            k = self.rope(k, pos, max_pos)
        scale = self.head_dim ** -0.5
        if not self.training:
            scale *= self.inference_scale_gain
        out = F.scaled_dot_product_attention(q, k, v, scale=scale)
        return self.proj(out.transpose(1, 2).reshape(b, t, c))


class Mlp(nn.Module):
    """Two linear layers with an exact (erf) GELU between them."""

    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the MLP to ``x`` ``[..., dim]``."""
        return self.fc2(self.act(self.fc1(x)))


class Block(nn.Module):
    """Pre-norm transformer block: ``x + attn(norm1(x))`` then ``x + mlp(norm2(x))``."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float = 4.0, qkv_bias: bool = True,
                 norm_eps: float = 1e-6, rope: Optional[RoPE2D] = None,
                 inference_scale_gain: float = 1.0):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=norm_eps)
        self.attn = Attention(dim, num_heads, qkv_bias, rope, inference_scale_gain)
        self.norm2 = nn.LayerNorm(dim, eps=norm_eps)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))

    def forward(self, x: torch.Tensor, pos: Optional[torch.Tensor] = None,
                max_pos: Optional[int] = None) -> torch.Tensor:
        """Apply the block to ``x`` ``[B, T, C]`` (``pos``, ``max_pos``: see :class:`RoPE2D`)."""
        x = x + self.attn(self.norm1(x), pos, max_pos)
        return x + self.mlp(self.norm2(x))


def inference_attention_gain(enabled: bool) -> float:
    """
    Return the eval-mode attention-scale gain of the fusion transformer (SPEC §2).

    With ``attn_bias_for_inference_enabled`` upstream multiplies the usual ``head_dim ** -0.5``
    by ``sqrt(ln 137 / ln 20)`` at inference; the released config disables it.
    """
    return math.sqrt(math.log(137.0) / math.log(20.0)) if enabled else 1.0
