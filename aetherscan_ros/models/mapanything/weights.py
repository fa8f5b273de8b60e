# Copyright 2026 The AetherScan ROS Authors
# SPDX-License-Identifier: Apache-2.0
"""
Finding, strictly loading and writing MapAnything checkpoints in the Hugging Face layout.

A checkpoint is a directory with ``config.json`` and ``model.safetensors`` (or a ``.pth`` read
with ``torch.load(weights_only=True)``, the dict possibly nested under ``"model"``). Our
module names are the names the HF file keeps (``dense_head.0/1.*``, ``input_process.i.1``);
the aliases upstream's state_dict also has (``dpt_feature_head.*``, ``dpt_regressor_head.*``,
``scratch.layerN_rn``, ``scratch.layer_rn.i``) are accepted and folded (SPEC §11).
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

#: The Apache-2.0 weights (``facebook/map-anything`` is CC-BY-NC: never the default).
DEFAULT_REPO_ID = 'facebook/map-anything-apache'
CONFIG_NAME = 'config.json'
RANDOM_MARK = 'aetherscan_random_weights'
RANDOM_LABEL = 'random weights (not a trained model)'

_LAYER_RN = re.compile(r'^(dense_head\.0\.)scratch\.(?:layer_rn\.([0-3])|layer([1-4])_rn)'
                       r'\.weight$')


def canonical_key(key: str) -> str:
    """Map an upstream alias to the name this port (and the HF file) uses; others unchanged."""
    if key.startswith('dpt_feature_head.'):
        key = 'dense_head.0.' + key[len('dpt_feature_head.'):]
    elif key.startswith('dpt_regressor_head.'):
        key = 'dense_head.1.' + key[len('dpt_regressor_head.'):]
    match = _LAYER_RN.match(key)
    if match:
        index = int(match.group(2)) if match.group(2) is not None else int(match.group(3)) - 1
        key = f'{match.group(1)}input_process.{index}.1.weight'
    return key


def alias_names(key: str):
    """Return the upstream alias names of a canonical key (what ``save_model`` drops)."""
    names = []
    for prefix, alias in (('dense_head.0.', 'dpt_feature_head.'),
                          ('dense_head.1.', 'dpt_regressor_head.')):
        if key.startswith(prefix):
            names.append(alias + key[len(prefix):])
    match = re.match(r'^dense_head\.0\.input_process\.([0-3])\.1\.weight$', key)
    if match:
        i = int(match.group(1))
        for head in ('dense_head.0.', 'dpt_feature_head.'):
            names += [f'{head}scratch.layer{i + 1}_rn.weight',
                      f'{head}scratch.layer_rn.{i}.weight']
    return names


def _fix_hint() -> str:
    return (f'download {DEFAULT_REPO_ID} on a machine with internet '
            f'(`hf download {DEFAULT_REPO_ID} --local-dir DIR`), copy DIR here and pass it as '
            'the model path, or build a random test model with '
            '`aetherscan_ros.models.mapanything.write_random_checkpoint`')


def locate_checkpoint(model: str = '', cache_dir: Optional[str] = None,
                      local_files_only: bool = False) -> Path:
    """
    Resolve ``model`` to a directory holding ``config.json`` and the weights.

    A local directory (or a file in it) never touches the network; ``owner/name`` (empty =
    :data:`DEFAULT_REPO_ID`) goes through ``huggingface_hub``: its cache first, a download only
    when ``HF_HUB_OFFLINE`` is not set and not ``local_files_only``. Raises
    :class:`BackendUnavailable` with the reason and the fix.
    """
    model = (model or DEFAULT_REPO_ID).strip()
    path = Path(model).expanduser()
    looks_local = path.exists() or model.startswith(('.', '/', '~')) or model.count('/') != 1
    if looks_local:
        path = path.parent if path.is_file() else path
        if not path.is_dir():
            raise BackendUnavailable(f'MapAnything checkpoint {path}: no such directory; '
                                     + _fix_hint())
        return _check_dir(path)
    if not re.fullmatch(r'[\w.-]+/[\w.-]+', model):
        raise BackendUnavailable(f'MapAnything model {model!r} is neither an existing directory '
                                 'nor a Hugging Face repo id (owner/name); ' + _fix_hint())
    try:
        from huggingface_hub import snapshot_download
        local = snapshot_download(model, allow_patterns=[CONFIG_NAME, *WEIGHT_NAMES],
                                  cache_dir=cache_dir, local_files_only=local_files_only)
    except Exception as exc:  # noqa: BLE001 - hub errors have many types; all mean "not here"
        raise BackendUnavailable(
            f'MapAnything weights {model!r}: no local directory of that name, and as a hub repo '
            f'id it is not cached and could not be fetched ({type(exc).__name__}: '
            f'{str(exc).splitlines()[0] if str(exc) else ""}); ' + _fix_hint()) from exc
    return _check_dir(Path(local))


def _check_dir(path: Path) -> Path:
    missing = [] if (path / CONFIG_NAME).is_file() else [CONFIG_NAME]
    if weights_file(path) is None:
        missing.append(WEIGHT_NAMES[0])
    if missing:
        raise BackendUnavailable(f'MapAnything checkpoint {path} lacks {" and ".join(missing)}; '
                                 + _fix_hint())
    return path


def read_state_dict(path: Path) -> Tuple[Dict[str, torch.Tensor], Dict[str, str]]:
    """Read tensors and metadata from a ``.safetensors`` or (weights-only) torch file."""
    return read_tensor_file(path, ('model',))  # upstream's benchmark .pth nests under model


def check_state_dict(model: torch.nn.Module, tensors: Mapping[str, torch.Tensor],
                     source: str) -> Dict[str, torch.Tensor]:
    """
    Return ``tensors`` under the model's names, or raise :class:`CheckpointError`.

    Aliases are folded onto their canonical key (an alias and its key both present must agree
    in shape); then every model key must be present with the model's shape and no other key
    may remain.
    """
    expected = model.state_dict()
    full: Dict[str, torch.Tensor] = {}
    clashes = []
    for key, value in tensors.items():
        name = canonical_key(key)
        if name in full and tuple(full[name].shape) != tuple(value.shape):
            clashes.append(f'{key} {tuple(value.shape)} vs {name} {tuple(full[name].shape)}')
        if name == key or name not in full:
            full[name] = value
    check_keys_and_shapes(expected, full, source, (('alias clash', clashes),))
    bad = [k for k, v in full.items() if not v.is_floating_point()]
    if bad:
        raise CheckpointError(f'{source}: non-floating-point tensors {bad[:MAX_LISTED]}')
    return full


def load_weights(model: torch.nn.Module, directory: Path,
                 dtype: torch.dtype = torch.float32) -> None:
    """Strictly load the weights in ``directory`` into ``model`` (may live on the meta device)."""
    path = weights_file(Path(directory))
    if path is None:
        raise CheckpointError(f'{directory}: no {" / ".join(WEIGHT_NAMES)} found')
    tensors, meta = read_state_dict(path)
    full = check_state_dict(model, tensors, str(path))
    model.load_state_dict({k: v.to(dtype) for k, v in full.items()}, strict=True, assign=True)
    random = meta.get(RANDOM_MARK, '') == 'true'
    model.weights_info = {'path': str(path), 'random': random,
                          'label': RANDOM_LABEL if random else f'MapAnything ({path})'}
    _LOG.info('loaded %d tensors from %s (%s)', len(tensors), path, model.weights_info['label'])


def save_checkpoint(model: torch.nn.Module, directory,
                    metadata: Optional[Dict[str, str]] = None) -> Path:
    """
    Write ``config.json`` and ``model.safetensors`` as the HF mixin does; return the directory.

    The file holds the canonical names only and maps each dropped upstream alias to its kept
    name in the safetensors metadata (as ``safetensors.torch.save_model`` does); ``metadata``
    adds string entries (e.g. the random-weights mark).
    """
    from safetensors.torch import save_file

    from aetherscan_ros.models.mapanything.config import save_config
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    meta = {'format': 'pt'}
    tensors = {}
    for key, value in model.state_dict().items():
        tensors[key] = value.detach().to('cpu').contiguous()
        meta.update({alias: key for alias in alias_names(key)})
    meta.update(metadata or {})
    tmp = directory / 'model.safetensors.tmp'
    save_file(tensors, str(tmp), metadata=meta)
    os.replace(tmp, directory / 'model.safetensors')
    save_config(model.config, directory / CONFIG_NAME)
    return directory
