# Copyright 2026 The AetherScan ROS Authors
# SPDX-License-Identifier: Apache-2.0
"""
Reconstruction backends and the one place that chooses between them.

``mapanything``: MapAnything (metric, takes K, TF poses, depth as inputs; default weights
``facebook/map-anything-apache``, Apache-2.0). ``fast3r``: the learned multi-view model
(needs torch and the user's checkpoint; non-commercial weights). ``classical``: COLMAP/OpenCV
structure-from-motion plus dense stereo (no weights, no torch).

``auto`` picks the first whose weights are on this machine (a local directory or the hub
cache) and that loads, with the reason: MapAnything first (metric scale, uses the robot's
calibration and poses, Apache-2.0 weights by default), then Fast3R (learned, but scale-free,
K only, non-commercial weights), then classical (always there). A ``model`` the caller names
goes to the backend it belongs to (its config.json or repo name says which). ``auto`` never
downloads weights; a model the caller named that cannot be used (a path with nothing there,
corrupt weights) is a logged warning naming it, not a quiet fallback.
"""

import logging
import os
from pathlib import Path
from typing import Mapping, Optional, Tuple

from aetherscan_ros.backends.base import (  # noqa: F401
    BackendUnavailable, Frame, ProgressEvent, ReconstructionBackend, ReconstructionError,
    ReconstructionResult, ViewCloud)

BACKENDS = ('auto', 'mapanything', 'fast3r', 'classical')

_LOG = logging.getLogger(__name__)


def create_backend(kind: str, model: str = '', device: str = 'auto',
                   options: Optional[Mapping[str, object]] = None
                   ) -> Tuple[ReconstructionBackend, str]:
    """
    Build a backend; return ``(backend, reason)``.

    ``reason`` says why this backend was chosen (for ``auto``: why Fast3R was or was not
    usable). ``options`` are passed to the backend's constructor as keyword arguments
    (``mapanything.*``, ``fast3r.*``, ``classical.*`` keys to that backend, prefix
    stripped). Raises :class:`BackendUnavailable` when an explicitly requested backend cannot
    run, and ``ValueError`` for an unknown kind.
    """
    options = dict(options or {})
    if kind not in BACKENDS:
        raise ValueError(f'unknown backend {kind!r}: expected one of {", ".join(BACKENDS)}')

    def _opts(prefix):
        return {k[len(prefix) + 1:]: v for k, v in options.items() if k.startswith(prefix + '.')}

    reason, after = '', ''  # after: why MapAnything was not picked (auto)
    if kind == 'mapanything' or (kind == 'auto' and model_family(model) != 'fast3r'):
        try:
            from aetherscan_ros.backends.mapanything import MapAnythingBackend
            ma_opts = _opts('mapanything')
            if kind == 'auto':
                ma_opts['allow_download'] = False
            backend = MapAnythingBackend(model=model, device=device, **ma_opts)
            return backend, f'mapanything: {backend.describe()}'
        except (BackendUnavailable, ImportError) as exc:
            if kind == 'mapanything':
                if isinstance(exc, ImportError):
                    raise BackendUnavailable(f'MapAnything needs torch: {exc}') from exc
                raise
            after = f'MapAnything unavailable ({exc})'
            if model_family(model) == 'mapanything':  # the caller named it: say so
                _LOG.warning('backend auto: the MapAnything model %s cannot be used (%s); '
                             'trying the next backend', model.strip(), exc)
                model = ''
    if kind in ('fast3r', 'auto'):
        try:
            from aetherscan_ros.backends.fast3r import Fast3RBackend
            fast3r_opts = _opts('fast3r')
            if kind == 'auto':
                # 'auto' uses weights already on this machine; it never starts a download.
                fast3r_opts['allow_download'] = False
            backend = Fast3RBackend(model=model, device=device, **fast3r_opts)
            return backend, f'fast3r: {backend.describe()}' + (f' ({after})' if after else '')
        except BackendUnavailable as exc:
            if kind == 'fast3r':
                raise
            reason = f'Fast3R unavailable ({exc}); using the classical backend'
            if missing_model_path(model) is not None:
                reason = (f'Fast3R unavailable: the model path {model.strip()} does not '
                          f'exist ({exc}); using the classical backend')
                _LOG.warning('backend auto: the model path %s does not exist; running the '
                             'classical backend instead of Fast3R', model.strip())
            elif (model or '').strip():  # the caller named this model: it is not used
                _LOG.warning('backend auto: the Fast3R model %s cannot be used (%s); running '
                             'the classical backend instead', model.strip(), exc)
        except ImportError as exc:
            if kind == 'fast3r':
                raise BackendUnavailable(f'Fast3R needs torch: {exc}') from exc
            reason = f'Fast3R unavailable (cannot import torch: {exc}); using classical'
            if (model or '').strip():
                _LOG.warning('backend auto: the Fast3R model %s cannot be used without torch; '
                             'running the classical backend instead', model.strip())
        if after:  # why neither learned backend: Fast3R's reason, then MapAnything's
            head, _, tail = reason.rpartition('; using ')
            reason = f'{head}; {after}; using {tail}'
    else:
        reason = 'classical backend requested'
    from aetherscan_ros.backends.classical import ClassicalBackend
    return ClassicalBackend(**_opts('classical')), reason


def missing_model_path(model: str) -> Optional[Path]:
    """
    Return the path ``model`` names when it has the shape of a local path and nothing is there.

    A model is a checkpoint directory or a hub repo id (``owner/name``, empty = the default
    repo). A string that starts with ``/``, ``.`` or ``~``, ends with ``/`` or has other than
    one ``/`` is a path (the rule of ``models/fast3r/weights.py``); when it does not exist the
    caller made a mistake worth an error (CLI) or a warning (``auto``), not a silent fallback.
    Returns None for an empty model, an existing path and a repo id.
    """
    model = (model or '').strip()
    if not model:
        return None
    path = Path(model).expanduser()
    if path.exists():
        return None
    shaped = (model.startswith(('.', '/', '~')) or model.endswith('/')
              or model.count('/') != 1 or (os.sep != '/' and os.sep in model))
    return path if shaped else None


def model_family(model: str) -> str:
    """
    Return which learned backend ``model`` belongs to: ``mapanything``, ``fast3r`` or ''.

    A directory whose config.json is a MapAnything one, or a repo id / path naming
    ``map-anything``, is MapAnything's; any other non-empty model is Fast3R's (its historical
    meaning); empty = either (their default repo ids).
    """
    model = (model or '').strip()
    if not model:
        return ''
    from aetherscan_ros.backends.mapanything_inputs import is_mapanything_checkpoint
    path = Path(model).expanduser()
    if is_mapanything_checkpoint(path.parent if path.is_file() else path):
        return 'mapanything'
    return 'mapanything' if 'map-anything' in model.lower() else 'fast3r'
