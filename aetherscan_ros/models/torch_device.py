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
    The dtype is bfloat16 on CUDA devices that support it, float16 on older ones, float32 on
    the CPU (bf16 autocast without native bf16 support is ~9x slower there, SPEC §13).
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
    dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return device, dtype


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
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
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
