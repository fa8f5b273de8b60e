# Copyright 2026 The AetherScan ROS Authors
# SPDX-License-Identifier: Apache-2.0
"""
Finding, loading (strictly) and writing Fast3R checkpoints in the Hugging Face layout.

A checkpoint is a directory with ``config.json`` and ``model.safetensors`` (or ``model.pth``,
read with ``torch.load(weights_only=True)``; nothing is ever unpickled beyond plain tensors).
"""

import logging
import os
from pathlib import Path
import re
from typing import Dict, Mapping, Optional, Tuple

import torch

from aetherscan_ros.backends.base import BackendUnavailable
from aetherscan_ros.models.checkpoint_files import (  # noqa: F401 - re-exported
    check_keys_and_shapes, CheckpointError, MAX_LISTED, read_tensor_file, WEIGHT_NAMES,
    weights_file)

_LOG = logging.getLogger(__name__)

DEFAULT_REPO_ID = 'jedyang97/Fast3R_ViT_Large_512'
CONFIG_NAME = 'config.json'
#: safetensors ``__metadata__`` key marking a checkpoint made by ``write_random_checkpoint``.
RANDOM_MARK = 'aetherscan_random_weights'
RANDOM_LABEL = 'random weights (not a trained model)'
_ALIAS = re.compile(r'^(.*\.scratch\.)layer_rn\.([0-3])\.weight$')


def _fix_hint(model: str) -> str:
    return (f'download {DEFAULT_REPO_ID} on a machine with internet '
            f'(`hf download {DEFAULT_REPO_ID} --local-dir DIR`), copy DIR here and pass it as '
            'the model path, or build a random test model with '
            '`aetherscan_ros.models.fast3r.write_random_checkpoint`')


def _looks_like_path(model: str) -> bool:
    """Return True unless ``model`` has the shape of a hub repo id (``owner/name``)."""
    if Path(model).expanduser().exists() or model.startswith(('.', '/', '~')):
        return True
    return model.count('/') != 1 or model.endswith('/') or os.sep != '/' and os.sep in model


def locate_checkpoint(model: str, cache_dir: Optional[str] = None,
                      local_files_only: bool = False) -> Path:
    """
    Resolve ``model`` to a directory holding ``config.json`` and the weights.

    ``model`` is a local directory (never touches the network), or a Hugging Face repo id
    (``owner/name``; empty = :data:`DEFAULT_REPO_ID`) resolved through ``huggingface_hub``:
    the normal cache first, a download (with its progress bar) only when ``HF_HUB_OFFLINE`` is
    not set (or ``local_files_only``). ``cache_dir`` overrides the hub cache location.
    Raises :class:`BackendUnavailable` with the reason and the fix.
    """
    model = (model or DEFAULT_REPO_ID).strip()
    path = Path(model).expanduser()
    if _looks_like_path(model):
        if path.is_file():
            path = path.parent
        if not path.is_dir():
            raise BackendUnavailable(f'Fast3R checkpoint {path}: no such directory; '
                                     + _fix_hint(model))
        return _check_dir(path)
    if not re.fullmatch(r'[\w.-]+/[\w.-]+', model):
        raise BackendUnavailable(f'Fast3R model {model!r} is neither an existing directory nor a '
                                 'Hugging Face repo id (owner/name); ' + _fix_hint(model))
    try:
        from huggingface_hub import snapshot_download
    except ImportError as exc:  # pragma: no cover - huggingface_hub is in requirements.txt
        raise BackendUnavailable(f'cannot resolve repo id {model!r} without huggingface_hub '
                                 f'({exc}); pass a local checkpoint directory instead') from exc
    try:
        local = snapshot_download(model, allow_patterns=[CONFIG_NAME, *WEIGHT_NAMES],
                                  cache_dir=cache_dir, local_files_only=local_files_only)
    except Exception as exc:  # noqa: BLE001 - hub errors have many types; all mean "not here"
        from huggingface_hub import constants
        offline = local_files_only or constants.is_offline_mode()
        why = ('offline (HF_HUB_OFFLINE) and it is not in the local hub cache' if offline
               else 'it is not cached and could not be downloaded')
        raise BackendUnavailable(f'Fast3R weights {model!r} (no local directory of that name; '
                                 f'as a hub repo id {why}: {type(exc).__name__}: '
                                 f'{str(exc).splitlines()[0] if str(exc) else ""}); '
                                 + _fix_hint(model)) from exc
    return _check_dir(Path(local))


def _check_dir(path: Path) -> Path:
    missing = [] if (path / CONFIG_NAME).is_file() else [CONFIG_NAME]
    if weights_file(path) is None:
        missing.append(WEIGHT_NAMES[0])
    if missing:
        raise BackendUnavailable(f'Fast3R checkpoint {path} lacks {" and ".join(missing)}; '
                                 + _fix_hint(str(path)))
    return path


def read_state_dict(path: Path) -> Tuple[Dict[str, torch.Tensor], Dict[str, str]]:
    """Read tensors and metadata from a ``.safetensors`` or (weights-only) ``.pth`` file."""
    tensors, meta = read_tensor_file(path, ('state_dict',))  # Lightning training checkpoint
    if tensors and all(k.startswith('net.') for k in tensors):
        tensors = {k[4:]: v for k, v in tensors.items()}  # MultiViewDUSt3RLitModule.net
    return tensors, meta


def check_state_dict(model: torch.nn.Module, tensors: Mapping[str, torch.Tensor],
                     source: str) -> Dict[str, torch.Tensor]:
    """
    Return ``tensors`` completed with the ``layer_rn.N`` aliases, or raise CheckpointError.

    Only the DPT ``scratch.layer_rn.N.weight`` aliases of ``scratch.layer{N+1}_rn.weight`` may be
    missing (safetensors drops them, trap 7 of SPEC §12); every other key must be present with
    the model's shape, and no unknown key may be present.
    """
    expected = model.state_dict()
    full = dict(tensors)
    for key in expected:
        match = _ALIAS.match(key)
        if match and key not in full:
            canonical = f'{match.group(1)}layer{int(match.group(2)) + 1}_rn.weight'
            if canonical in full:
                full[key] = full[canonical]
    check_keys_and_shapes(expected, full, source)
    return full


def load_weights(model: torch.nn.Module, directory: Path,
                 dtype: torch.dtype = torch.float32) -> None:
    """Strictly load the weights in ``directory`` into ``model`` (may live on the meta device)."""
    path = weights_file(Path(directory))
    if path is None:
        raise CheckpointError(f'{directory}: no {" / ".join(WEIGHT_NAMES)} found')
    tensors, meta = read_state_dict(path)
    full = check_state_dict(model, tensors, str(path))
    bad_dtype = [k for k, v in full.items() if not v.is_floating_point()]
    if bad_dtype:
        raise CheckpointError(f'{path}: non-floating-point tensors {bad_dtype[:MAX_LISTED]}')
    full = {k: v.to(dtype) for k, v in full.items()}
    model.load_state_dict(full, strict=True, assign=True)
    model.decoder.reset_buffers(device='cpu')
    model.weights_info = {
        'path': str(path),
        'random': meta.get(RANDOM_MARK, '') == 'true',
        'label': RANDOM_LABEL if meta.get(RANDOM_MARK, '') == 'true' else f'Fast3R ({path})',
    }
    _LOG.info('loaded %d tensors from %s (%s)', len(tensors), path, model.weights_info['label'])


def save_checkpoint(model: torch.nn.Module, directory, metadata: Optional[Dict[str, str]] = None
                    ) -> Path:
    """
    Write ``config.json`` and ``model.safetensors`` as the HF mixin does; return the dir.

    Alias keys (``layer_rn.N``) are dropped and listed in the safetensors metadata, like
    ``safetensors.torch.save_model``; ``metadata`` adds string entries (e.g. the random mark).
    """
    from safetensors.torch import save_file

    from aetherscan_ros.models.fast3r.config import save_config
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    state = model.state_dict()
    meta = {'format': 'pt'}
    tensors = {}
    for key, value in state.items():
        match = _ALIAS.match(key)
        if match:
            meta[key] = f'{match.group(1)}layer{int(match.group(2)) + 1}_rn.weight'
            continue
        tensors[key] = value.detach().to('cpu').contiguous()
    meta.update(metadata or {})
    tmp = directory / 'model.safetensors.tmp'
    save_file(tensors, str(tmp), metadata=meta)
    os.replace(tmp, directory / 'model.safetensors')
    save_config(model.config, directory / CONFIG_NAME)
    return directory
