# Copyright 2026 The AetherScan ROS Authors
# SPDX-License-Identifier: Apache-2.0
"""
Reading checkpoint files safely, for every model port: safetensors, or weights-only torch.

Weights are data, not code: a ``.safetensors`` file is read with ``safe_open``; a ``.pth`` /
``.bin`` file only with ``torch.load(weights_only=True)``, so a pickle that would run code is
refused. Every failure is a :class:`CheckpointError` that names the file and the reason.
"""

from pathlib import Path
from typing import Dict, Mapping, Optional, Sequence, Tuple

import torch

WEIGHT_NAMES = ('model.safetensors', 'model.pth', 'pytorch_model.bin')
MAX_LISTED = 5  # keys named per kind of problem in an error


class CheckpointError(ValueError):
    """A checkpoint file that does not fit the model (names the file and the first keys)."""


def weights_file(directory: Path, names: Sequence[str] = WEIGHT_NAMES) -> Optional[Path]:
    """Return the weights file in ``directory`` (the first of ``names`` present) or None."""
    for name in names:
        if (Path(directory) / name).is_file():
            return Path(directory) / name
    return None


def read_tensor_file(path: Path, wrappers: Sequence[str] = ()
                     ) -> Tuple[Dict[str, torch.Tensor], Dict[str, str]]:
    """
    Return ``(tensors, metadata)`` of a ``.safetensors`` or weights-only torch file.

    ``wrappers``: keys under which a torch file may nest its state dict (e.g. Lightning's
    ``state_dict``, upstream's ``model``); the first present is taken.
    """
    path = Path(path)
    if path.suffix == '.safetensors':
        from safetensors import safe_open
        try:
            with safe_open(str(path), framework='pt', device='cpu') as handle:
                meta = dict(handle.metadata() or {})
                tensors = {k: handle.get_tensor(k) for k in handle.keys()}
        except Exception as exc:  # noqa: BLE001 - SafetensorError, OSError, ...
            raise CheckpointError(f'{path}: not a readable safetensors file (truncated or '
                                  f'corrupt?): {type(exc).__name__}: {exc}') from exc
        return tensors, meta
    try:
        obj = torch.load(str(path), map_location='cpu', weights_only=True, mmap=True)
    except Exception as exc:  # noqa: BLE001 - pickle errors, zip errors, refused globals
        raise CheckpointError(f'{path}: cannot be read as a weights-only torch file '
                              f'(corrupt, or holds objects other than tensors): {exc}') from exc
    for key in wrappers:
        if isinstance(obj, Mapping) and isinstance(obj.get(key), Mapping):
            obj = obj[key]
            break
    if not isinstance(obj, Mapping) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise CheckpointError(f'{path}: expected a mapping of tensor names to tensors')
    return dict(obj), {}


def check_keys_and_shapes(expected: Mapping[str, torch.Tensor], full: Mapping[str, torch.Tensor],
                          source: str, extra: Sequence[Tuple[str, Sequence[str]]] = ()):
    """
    Raise :class:`CheckpointError` unless ``full`` has exactly ``expected``'s keys and shapes.

    The message names ``source`` and lists (at most :data:`MAX_LISTED` each) the missing,
    unexpected and wrong-shape keys, then any ``extra`` ``(kind, items)`` problems.
    """
    missing = [k for k in expected if k not in full]
    unexpected = [k for k in full if k not in expected]
    wrong = [f'{k} {tuple(full[k].shape)} != {tuple(v.shape)}' for k, v in expected.items()
             if k in full and tuple(full[k].shape) != tuple(v.shape)]
    problems = []
    for what, items in (('missing', missing), ('unexpected', unexpected),
                        ('wrong shape', wrong), *extra):
        if items:
            listed = ', '.join(items[:MAX_LISTED])
            more = f' (+{len(items) - MAX_LISTED} more)' if len(items) > MAX_LISTED else ''
            problems.append(f'{len(items)} {what}: {listed}{more}')
    if problems:
        raise CheckpointError(f'{source} does not match the model built from its config.json: '
                              + '; '.join(problems))
