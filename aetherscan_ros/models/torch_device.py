# Copyright 2026 The AetherScan ROS Authors
# SPDX-License-Identifier: Apache-2.0
"""Choosing the torch device and compute precision (CUDA + bf16/fp16 when present, CPU fp32)."""

import logging
from typing import Dict, Optional, Tuple

import torch

from aetherscan_ros.backends.base import BackendUnavailable

_LOG = logging.getLogger(__name__)

PRECISIONS = {'auto': None, 'fp32': torch.float32, 'bf16': torch.bfloat16,
              'fp16': torch.float16}


def select_device(pref: str = 'auto') -> Tuple[torch.device, torch.dtype]:
    """
    Return ``(device, compute dtype)`` for a preference string.

    ``'auto'``: the first CUDA device if there is one, else the CPU. ``'cpu'``, ``'cuda'`` or
    ``'cuda:N'`` choose explicitly; an unusable CUDA request raises :class:`BackendUnavailable`.
    The dtype is bfloat16 on CUDA devices that support it natively (:func:`native_bf16`),
    float16 on older ones, float32 on the CPU (bf16 autocast without native bf16 support is
    ~9x slower there, SPEC §13).
    """
    pref = (pref or 'auto').strip().lower()
    if pref == 'auto':
        pref = 'cuda' if torch.cuda.is_available() else 'cpu'
    try:
        device = torch.device(pref)
    except RuntimeError as exc:
        raise ValueError(f"device {pref!r}: expected 'auto', 'cpu', 'cuda' or 'cuda:N'") from exc
    if device.type == 'cpu':
        return device, torch.float32
    if device.type != 'cuda':
        raise ValueError(f"device {pref!r}: expected 'auto', 'cpu', 'cuda' or 'cuda:N'")
    if not torch.cuda.is_available():
        raise BackendUnavailable(f'device {pref!r} requested but torch {torch.__version__} sees '
                                 'no CUDA device (CPU-only build or no driver); use device:=cpu')
    index = device.index if device.index is not None else torch.cuda.current_device()
    if index >= torch.cuda.device_count():
        raise BackendUnavailable(f'device {pref!r}: only {torch.cuda.device_count()} CUDA '
                                 'device(s) present')
    device = torch.device('cuda', index)
    return device, cuda_half_dtype(device)


def native_bf16(device: torch.device) -> bool:
    """
    Return whether the CUDA ``device`` computes in bfloat16 natively (ROCm: always).

    Native means compute capability 8.0 or newer (Ampere, Ada, Hopper, Jetson Orin). We ask
    the chosen device itself: ``torch.cuda.is_bf16_supported()`` looks at the *current* device
    and by default also says yes where bf16 is only emulated (V100, T4, Jetson Xavier), which
    runs several times slower than fp16 there.
    """
    if getattr(torch.version, 'hip', None):
        return True
    major, _ = torch.cuda.get_device_capability(device)
    return major >= 8


def cuda_half_dtype(device: torch.device) -> torch.dtype:
    """Return bfloat16 where ``device`` supports it natively, else float16."""
    return torch.bfloat16 if native_bf16(device) else torch.float16


def resolve_precision(device: torch.device, precision: str = 'auto') -> torch.dtype:
    """
    Return the compute dtype for ``precision`` in ``auto|fp32|bf16|fp16`` on ``device``.

    Half precision is only honoured on CUDA; on the CPU every choice runs float32.
    """
    if precision not in PRECISIONS:
        raise ValueError(f'precision {precision!r}: expected one of {", ".join(PRECISIONS)}')
    if device.type != 'cuda':
        if precision in ('bf16', 'fp16'):
            _LOG.warning('precision %s ignored on %s: running float32', precision, device)
        return torch.float32
    if precision == 'auto':
        return cuda_half_dtype(device)
    if precision == 'bf16' and not native_bf16(device):
        major, minor = torch.cuda.get_device_capability(device)
        _LOG.warning('precision bf16 on %s (compute capability %d.%d) is emulated and slow; '
                     'fp16 runs natively there', device, major, minor)
    return PRECISIONS[precision]


def gpu_memory(device: Optional[torch.device] = None) -> Optional[Dict[str, int]]:
    """Return CUDA memory in bytes (``total``, ``free``, ``allocated``, ``peak``) or None."""
    if not torch.cuda.is_available():
        return None
    device = device if device is not None and device.type == 'cuda' else torch.device('cuda')
    free, total = torch.cuda.mem_get_info(device)
    return {'total': int(total), 'free': int(free),
            'allocated': int(torch.cuda.memory_allocated(device)),
            'peak': int(torch.cuda.max_memory_allocated(device))}
