# Copyright 2026 The AetherScan ROS Authors
# SPDX-License-Identifier: Apache-2.0
"""Running the network outside ``nn.Module.forward``: no autograd, autocast, memory bounds."""

import contextlib
import logging
from typing import Dict, List, Optional, Sequence

import numpy as np
import torch

from aetherscan_ros.models.fast3r.model import (
    check_view_count, default_image_ids, Fast3R, OUTPUT_KEYS)

_LOG = logging.getLogger(__name__)

#: Views per DPT-head call by default (upstream uses 25); smaller bounds peak memory.
DEFAULT_HEAD_CHUNK = 8


def autocast_context(device: torch.device, dtype: torch.dtype):
    """
    Return ``torch.autocast`` for half precision on CUDA, a no-op context otherwise.

    Unlike upstream (trap 1, SPEC §12) float32 really means float32: no autocast at all.
    """
    if device.type == 'cuda' and dtype in (torch.bfloat16, torch.float16):
        return torch.autocast('cuda', dtype=dtype)
    return contextlib.nullcontext()


def is_out_of_memory(exc: BaseException) -> bool:
    """Return True for a CUDA (or CPU allocator) out-of-memory error."""
    if isinstance(exc, torch.OutOfMemoryError):
        return True
    return isinstance(exc, RuntimeError) and 'out of memory' in str(exc).lower()


def run_fast3r(model: Fast3R, views: Sequence[torch.Tensor],
               image_ids: Optional[Sequence[int]] = None,
               device: Optional[torch.device] = None, dtype: torch.dtype = torch.float32,
               head_chunk: Optional[int] = DEFAULT_HEAD_CHUNK) -> Dict[str, object]:
    """
    Run ``model`` on preprocessed views and return numpy outputs per view.

    Parameters
    ----------
    model : Fast3R
        The network (eval mode).
    views : sequence of torch.Tensor
        Per view ``[1, 3, H_i, W_i]`` (sizes may differ).
    image_ids : sequence of int, optional
        Image-index ids; default :func:`default_image_ids` (deterministic).
    device : torch.device, optional
        Where to run (default: where the model's parameters are).
    dtype : torch.dtype
        Compute precision: float32 (no autocast) or bf16/fp16 autocast on CUDA.
    head_chunk : int, optional
        Views per encoder/DPT call (memory bound); None = all at once.

    Returns
    -------
    dict: each of ``pts3d_in_other_view``, ``conf``, ``pts3d_local``, ``conf_local`` as a list
    of float32 arrays ``[H_i, W_i, 3]`` / ``[H_i, W_i]``, plus ``image_ids``.

    """
    check_view_count(len(views))
    ids = list(image_ids) if image_ids is not None else default_image_ids(len(views))
    device = device or next(model.parameters()).device
    with torch.inference_mode(), autocast_context(device, dtype):
        out = model([v.to(device) for v in views], image_ids=ids, head_chunk=head_chunk)
    result: Dict[str, object] = {'image_ids': ids}
    for key in OUTPUT_KEYS:
        value = out[key]
        items: List[torch.Tensor] = list(value) if isinstance(value, (list, tuple)) else \
            list(value.split(1))
        result[key] = [np.ascontiguousarray(t[0].float().cpu().numpy()) for t in items]
    return result
