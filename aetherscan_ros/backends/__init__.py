# Copyright 2026 The AetherScan ROS Authors
# SPDX-License-Identifier: Apache-2.0
"""
Reconstruction backends and the one place that chooses between them.

``fast3r``: the learned multi-view model (needs torch and the user's checkpoint).
``classical``: COLMAP/OpenCV structure-from-motion plus dense stereo (no weights, no torch).
``auto``: Fast3R when its weights are on this machine (a local directory or the hub cache) and
torch works, otherwise classical, with the reason. ``auto`` never downloads weights.
"""

import logging
from typing import Mapping, Optional, Tuple

from aetherscan_ros.backends.base import (  # noqa: F401
    BackendUnavailable, Frame, ProgressEvent, ReconstructionBackend, ReconstructionError,
    ReconstructionResult, ViewCloud)

BACKENDS = ('auto', 'fast3r', 'classical')

_LOG = logging.getLogger(__name__)


def create_backend(kind: str, model: str = '', device: str = 'auto',
                   options: Optional[Mapping[str, object]] = None
                   ) -> Tuple[ReconstructionBackend, str]:
    """
    Build a backend; return ``(backend, reason)``.

    ``reason`` says why this backend was chosen (for ``auto``: why Fast3R was or was not
    usable). ``options`` are passed to the backend's constructor as keyword arguments
    (``fast3r.*`` keys to Fast3R, ``classical.*`` keys to the classical backend, prefix
    stripped). Raises :class:`BackendUnavailable` when an explicitly requested backend cannot
    run, and ``ValueError`` for an unknown kind.
    """
    options = dict(options or {})
    if kind not in BACKENDS:
        raise ValueError(f'unknown backend {kind!r}: expected one of {", ".join(BACKENDS)}')

    def _opts(prefix):
        return {k[len(prefix) + 1:]: v for k, v in options.items() if k.startswith(prefix + '.')}

    if kind in ('fast3r', 'auto'):
        try:
            from aetherscan_ros.backends.fast3r import Fast3RBackend
            fast3r_opts = _opts('fast3r')
            if kind == 'auto':
                # 'auto' uses weights already on this machine; it never starts a download.
                fast3r_opts['allow_download'] = False
            backend = Fast3RBackend(model=model, device=device, **fast3r_opts)
            return backend, f'fast3r: {backend.describe()}'
        except BackendUnavailable as exc:
            if kind == 'fast3r':
                raise
            reason = f'Fast3R unavailable ({exc}); using the classical backend'
        except ImportError as exc:
            if kind == 'fast3r':
                raise BackendUnavailable(f'Fast3R needs torch: {exc}') from exc
            reason = f'Fast3R unavailable (cannot import torch: {exc}); using classical'
    else:
        reason = 'classical backend requested'
    from aetherscan_ros.backends.classical import ClassicalBackend
    return ClassicalBackend(**_opts('classical')), reason
