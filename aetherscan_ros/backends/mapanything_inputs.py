# Copyright 2026 The AetherScan ROS Authors
# SPDX-License-Identifier: Apache-2.0
"""
What the MapAnything backend needs before the model runs: the checkpoint, its licence, inputs.

* :func:`locate_checkpoint`: a local directory or a hub repo id (default
  :data:`DEFAULT_REPO_ID`, the Apache-2.0 weights) resolved through the hub cache.
* :func:`checkpoint_licence`: which licence the weights come with, from the checkpoint's own
  metadata, its model card, or the repo name (Apache-2.0 or CC BY-NC 4.0).
* :func:`target_size` and :func:`preprocess_view`: upstream's ``preprocess_inputs`` (SPEC §3.2):
  one network size for all views, each image resized (LANCZOS when shrinking, BICUBIC when
  growing) and cropped, with its intrinsics and depth moved the same way. torch-free.
"""

from dataclasses import dataclass
import json
import math
from pathlib import Path
import re
import struct
from typing import Optional, Sequence, Tuple

import numpy as np

from aetherscan_ros.backends.base import BackendUnavailable, ReconstructionError
from aetherscan_ros.backends.licences import (
    MAPANYTHING_APACHE as APACHE, MAPANYTHING_NONCOMMERCIAL as NONCOMMERCIAL,
    MAPANYTHING_UNKNOWN as UNKNOWN, RANDOM as RANDOM_WEIGHTS)

DEFAULT_REPO_ID = 'facebook/map-anything-apache'
NONCOMMERCIAL_REPO_ID = 'facebook/map-anything'
CONFIG_NAME = 'config.json'
WEIGHTS_NAME = 'model.safetensors'
WEIGHT_NAMES = (WEIGHTS_NAME, 'model.pth', 'pytorch_model.bin')  # = models/mapanything
CARD_NAME = 'README.md'
_CARD_LICENCE = re.compile(r'^license:\s*([\w.-]+)\s*$', re.MULTILINE)
#: ``resize_mode='fixed_mapping'`` at 518 (upstream's default): mean aspect W/H -> (W, H).
FIXED_MAPPING_518 = ((1.000, (518, 518)), (1.321, (518, 392)), (1.542, (518, 336)),
                     (1.762, (518, 294)), (2.056, (518, 252)), (3.083, (518, 168)),
                     (0.757, (392, 518)), (0.649, (336, 518)), (0.567, (294, 518)),
                     (0.486, (252, 518)))
PATCH = 14
MEAN = np.array([0.485, 0.456, 0.406], np.float32)  # data_norm_type 'dinov2'
STD = np.array([0.229, 0.224, 0.225], np.float32)


def _fix_hint() -> str:
    return (f'download {DEFAULT_REPO_ID} on a machine with internet (`hf download '
            f'{DEFAULT_REPO_ID} --local-dir DIR`), copy DIR here and pass it as the model, or '
            'build a random test model with '
            '`aetherscan_ros.models.mapanything.write_random_checkpoint`')


def locate_checkpoint(model: str, local_files_only: bool = False) -> Path:
    """
    Resolve ``model`` (directory or ``owner/name``; empty = Apache weights) to a directory.

    Raises :class:`BackendUnavailable` naming the path or repo id, what is missing and the fix.
    A download only happens for a repo id, and never with ``local_files_only``.
    """
    model = (model or DEFAULT_REPO_ID).strip()
    path = Path(model).expanduser()
    repo_shaped = (re.fullmatch(r'[\w.-]+/[\w.-]+', model) is not None
                   and not model.startswith(('.', '/', '~')))
    if path.exists() or not repo_shaped:
        if path.is_file():
            path = path.parent
        if not path.is_dir():
            raise BackendUnavailable(f'MapAnything checkpoint {path}: no such directory; '
                                     + _fix_hint())
        return _check_dir(path)
    try:
        from huggingface_hub import snapshot_download
        local = snapshot_download(model, allow_patterns=[CONFIG_NAME, *WEIGHT_NAMES, CARD_NAME],
                                  local_files_only=local_files_only)
    except Exception as exc:  # noqa: B902 - hub errors have many types; all mean "not here"
        first = str(exc).splitlines()[0] if str(exc) else ''
        raise BackendUnavailable(f'MapAnything weights {model!r} are not in the local hub '
                                 f'cache and were not downloaded ({type(exc).__name__}: '
                                 f'{first}); ' + _fix_hint()) from exc
    return _check_dir(Path(local))


def _check_dir(path: Path) -> Path:
    missing = [] if (path / CONFIG_NAME).is_file() else [CONFIG_NAME]
    if not any((path / name).is_file() for name in WEIGHT_NAMES):
        missing.append(WEIGHTS_NAME)
    if missing:
        raise BackendUnavailable(f'MapAnything checkpoint {path} lacks {" and ".join(missing)}; '
                                 + _fix_hint())
    return path


def safetensors_metadata(path: Path) -> dict:
    """Return the ``__metadata__`` of a safetensors file, read from its header only."""
    with open(path, 'rb') as handle:
        head = handle.read(8)
        if len(head) < 8:
            raise ValueError(f'{path}: truncated safetensors file ({len(head)} bytes)')
        (length,) = struct.unpack('<Q', head)
        if length > 100_000_000:
            raise ValueError(f'{path}: implausible safetensors header length {length}')
        header = json.loads(handle.read(length).decode('utf-8'))
    meta = header.get('__metadata__') or {}
    return meta if isinstance(meta, dict) else {}


def is_random_checkpoint(path: Path) -> bool:
    """Return whether the checkpoint directory ``path`` holds marked random test weights."""
    try:
        meta = safetensors_metadata(Path(path) / WEIGHTS_NAME)
    except (OSError, ValueError):
        return False
    return any('random' in str(k).lower() and str(v).lower() == 'true' for k, v in meta.items())


def is_mapanything_checkpoint(path: Path) -> bool:
    """Return whether ``path`` is a directory whose config.json is a MapAnything one."""
    try:
        config = json.loads((Path(path) / CONFIG_NAME).read_text())
    except (OSError, ValueError):
        return False
    return isinstance(config, dict) and 'info_sharing_config' in config \
        and 'geometric_input_config' in config


def _licence_word(text: str) -> str:
    word = text.strip().lower()
    if word.startswith('apache'):
        return APACHE
    if 'nc' in re.split(r'[-_ .]', word):
        return NONCOMMERCIAL
    return ''


def checkpoint_licence(path: Path, model: str = '') -> str:
    """
    Return the licence of the MapAnything weights in ``path`` (``model``: how it was named).

    Evidence in order: marked random test weights; a ``license``/``licence`` entry in
    config.json or the safetensors metadata; the ``license:`` line of the model card
    (README.md, which hub snapshots carry); the repo name in ``model`` or in the hub cache path
    (``...map-anything-apache...``: Apache-2.0, ``facebook/map-anything``: CC BY-NC 4.0).
    """
    path = Path(path)
    if is_random_checkpoint(path):
        return RANDOM_WEIGHTS
    found = []
    try:
        config = json.loads((path / CONFIG_NAME).read_text())
        found += [str(config.get(k, '')) for k in ('license', 'licence')]
    except (OSError, ValueError, AttributeError):
        pass
    try:
        meta = safetensors_metadata(path / WEIGHTS_NAME)
        found += [str(meta.get(k, '')) for k in ('license', 'licence')]
    except (OSError, ValueError):
        pass
    try:
        found += _CARD_LICENCE.findall((path / CARD_NAME).read_text(errors='replace')[:4000])
    except OSError:
        pass
    for text in found:
        if text and _licence_word(text):
            return _licence_word(text)
    for name in ((model or '').strip().lower(), str(path.resolve()).lower()):
        if 'map-anything-apache' in name or 'map_anything_apache' in name:
            return APACHE
        if re.search(r'(^|/|--)map-anything($|/)', name.replace('models--facebook--', '/')):
            return NONCOMMERCIAL
    return UNKNOWN


def target_size(sizes: Sequence[Tuple[int, int]], size: int = 518,
                mode: str = 'fixed_mapping') -> Tuple[int, int]:
    """
    Return the network ``(width, height)`` shared by all views (SPEC §3.1 step 2).

    ``sizes`` are the input ``(width, height)``; the mean aspect W/H picks the size:
    ``fixed_mapping`` (``size`` 518 only): the nearest entry of :data:`FIXED_MAPPING_518`;
    ``longest_side``: the long side ``size``, the other rounded to a multiple of 14.
    """
    mean = float(np.mean([w / h for w, h in sizes]))
    if mode == 'fixed_mapping':
        if size != 518:
            raise ValueError(f'fixed_mapping needs size 518, got {size}')
        return min(FIXED_MAPPING_518, key=lambda item: abs(item[0] - mean))[1]
    if mode != 'longest_side':
        raise ValueError(f'resize mode {mode!r}: expected fixed_mapping or longest_side')
    if mean >= 1:
        return size, round((size // PATCH) / mean) * PATCH
    return round((size // PATCH) * mean) * PATCH, size


@dataclass(frozen=True)
class NetworkView:
    """
    One view at the network size, and how to map pixels back to the input image.

    ``rgb`` ``[h, w, 3]`` uint8 (resized + cropped input), ``K`` ``[3, 3]`` (the given K moved
    with the image) or None, ``depth`` ``[h, w]`` float (metres, 0 = invalid) or None;
    ``scale`` s, ``offset`` o of the resize step and ``crop`` (left, top) of SPEC §3.2.
    """

    rgb: np.ndarray
    K: Optional[np.ndarray]
    depth: Optional[np.ndarray]
    input_size: Tuple[int, int]
    scale: float
    offset: Tuple[float, float]
    crop: Tuple[int, int]

    def tensor(self) -> np.ndarray:
        """Return the normalised image ``[1, 3, h, w]`` float32 (data_norm_type dinov2)."""
        img = (self.rgb.astype(np.float32) / 255.0 - MEAN) / STD
        return np.ascontiguousarray(img.transpose(2, 0, 1)[None])

    def K_to_input(self, k_net: np.ndarray) -> np.ndarray:
        """Return the network-size pinhole ``k_net`` ``[3, 3]`` for the input image."""
        k = np.array(k_net, np.float64)
        s = self.scale
        for axis in (0, 1):
            c = k[axis, 2] + self.crop[axis]
            k[axis, 2] = (c + 0.5 + self.offset[axis]) / s - 0.5
        k[0, 0] /= s
        k[1, 1] /= s
        k[0, 1] /= s
        return k


def preprocess_view(image: np.ndarray, K: Optional[np.ndarray], depth: Optional[np.ndarray],
                    target: Tuple[int, int], name: str = '') -> NetworkView:
    """Resize and crop ``image`` ``[H, W, 3]`` uint8 (with K, depth) to ``target`` (SPEC §3.2)."""
    from PIL import Image
    label = name or 'image'
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ReconstructionError(f'{label}: expected an [H, W, 3] uint8 RGB image, got '
                                  f'{image.shape} {image.dtype}')
    height, width = image.shape[:2]
    tw, th = target
    s = max(tw / width, th / height) + 1e-8
    rw, rh = math.floor(width * s), math.floor(height * s)
    resample = Image.Resampling.LANCZOS if s < 1 else Image.Resampling.BICUBIC
    resized = np.asarray(Image.fromarray(image).resize((rw, rh), resample))
    offset = (0.5 * (width * s - rw), 0.5 * (height * s - rh))
    crop = [(rw - tw) // 2, (rh - th) // 2]
    k_net = None
    if K is not None:
        K = np.asarray(K, np.float64)
        if K.shape != (3, 3) or not np.isfinite(K).all() or K[0, 0] <= 0 or K[1, 1] <= 0:
            raise ReconstructionError(f'{label}: K must be a finite 3x3 pinhole matrix with '
                                      f'positive focal lengths, got {K.tolist()}')
        k_net = K.copy()
        k_net[0, 0] *= s
        k_net[1, 1] *= s
        k_net[0, 1] *= s
        margin = (0.5 * (rw - tw), 0.5 * (rh - th))
        for axis in (0, 1):
            c1 = s * (K[axis, 2] + 0.5) - offset[axis] - 0.5
            c2 = ((c1 + 0.5) - margin[axis]) - 0.5
            crop[axis] = int(np.round(c1 - c2))
            k_net[axis, 2] = c1 - crop[axis]
    left, top = crop
    d_net = None
    if depth is not None:
        depth = np.asarray(depth, np.float64)
        if depth.shape != (height, width):
            raise ReconstructionError(f'{label}: depth {depth.shape} does not match the image '
                                      f'{(height, width)}')
        rows = np.minimum(np.floor(np.arange(rh) * (height / rh)).astype(int), height - 1)
        cols = np.minimum(np.floor(np.arange(rw) * (width / rw)).astype(int), width - 1)
        d_net = np.nan_to_num(depth[rows][:, cols], nan=0.0, posinf=0.0, neginf=0.0)
        d_net = np.maximum(d_net[top:top + th, left:left + tw], 0.0)
    return NetworkView(np.ascontiguousarray(resized[top:top + th, left:left + tw]), k_net, d_net,
                       (width, height), s, offset, (left, top))
