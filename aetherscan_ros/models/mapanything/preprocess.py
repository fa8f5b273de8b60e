# Copyright 2026 The AetherScan ROS Authors
# SPDX-License-Identifier: Apache-2.0
"""
Upstream's input preparation (``load_images``, ``preprocess_inputs``; SPEC §3.1-§3.2).

One target size for all views (from their mean aspect ratio), then per view a resize (PIL,
LANCZOS when shrinking, BICUBIC when enlarging) and a centre crop; intrinsics follow the
resize and the crop (half-to-even crop offset when intrinsics are given, SPEC §13.7), depth is
resized nearest (OpenCV) and cropped the same way. Images are normalised with the DINOv2
statistics. Outputs are the per-view dicts ``MapAnything.infer`` takes.
"""

import math
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch

from aetherscan_ros.models.mapanything.config import DINOV2_MEAN, DINOV2_STD

#: ``fixed_mapping`` table for the 518 resolution set: aspect (W/H) -> (W, H).
FIXED_MAPPING_518 = {1.000: (518, 518), 1.321: (518, 392), 1.542: (518, 336),
                     1.762: (518, 294), 2.056: (518, 252), 3.083: (518, 168),
                     0.757: (392, 518), 0.649: (336, 518), 0.567: (294, 518),
                     0.486: (252, 518)}
RESIZE_MODES = ('fixed_mapping', 'longest_side', 'square', 'fixed_size')


def target_size(sizes: Sequence[Tuple[int, int]], resize_mode: str = 'fixed_mapping',
                size=518, patch: int = 14) -> Tuple[int, int]:
    """
    Return the common ``(width, height)`` for source ``sizes`` ``[(W, H), ...]``.

    ``fixed_mapping`` (size 518): the table entry nearest the mean W/H; ``longest_side``
    (size S): S on the longer side, the other side ``round((S // patch) / aspect) * patch``;
    ``square``: ``(S // patch * patch)`` squared; ``fixed_size`` (size ``(W, H)``): each
    floored to a multiple of the patch.
    """
    if not sizes:
        raise ValueError('no images')
    aspect = float(np.mean([w / h for w, h in sizes]))
    if resize_mode == 'fixed_mapping':
        if size != 518:
            raise ValueError(f'fixed_mapping has a table for size 518 only, got {size}')
        key = min(FIXED_MAPPING_518, key=lambda a: abs(a - aspect))
        return FIXED_MAPPING_518[key]
    if resize_mode == 'longest_side':
        side = int(size)
        if aspect >= 1:
            return side, round((side // patch) / aspect) * patch
        return round((side // patch) * aspect) * patch, side
    if resize_mode == 'square':
        side = int(size) // patch * patch
        return side, side
    if resize_mode == 'fixed_size':
        width, height = size
        return int(width) // patch * patch, int(height) // patch * patch
    raise ValueError(f'resize_mode {resize_mode!r}: expected one of {", ".join(RESIZE_MODES)}')


def crop_resize(image, width: int, height: int, intrinsics: Optional[np.ndarray] = None,
                depth: Optional[np.ndarray] = None):
    """
    Resize ``image`` (PIL or ``[H, W, 3]`` uint8) to cover ``width x height`` and crop it.

    Returns ``(image PIL, intrinsics [3, 3] float64 or None, depth [height, width] or None)``.
    """
    from PIL import Image
    pil = image if isinstance(image, Image.Image) else Image.fromarray(np.asarray(image))
    src_w, src_h = pil.size
    scale = max(width / src_w, height / src_h) + 1e-8
    new_w, new_h = math.floor(src_w * scale), math.floor(src_h * scale)
    method = Image.Resampling.LANCZOS if scale < 1 else Image.Resampling.BICUBIC
    pil = pil.resize((new_w, new_h), method)
    left, top = (new_w - width) // 2, (new_h - height) // 2
    k_out = None
    if intrinsics is not None:
        k = np.array(intrinsics, dtype=np.float64)
        if k.shape != (3, 3):
            raise ValueError(f'intrinsics: expected [3, 3], got {list(k.shape)}')
        offset = 0.5 * (np.array([src_w, src_h], np.float64) * scale
                        - np.array([new_w, new_h], np.float64))
        k[:2, :2] *= scale  # fx, skew, fy
        k[:2, 2] = scale * (k[:2, 2] + 0.5) - offset - 0.5
        offset2 = 0.5 * (np.array([new_w, new_h], np.float64)
                         - np.array([width, height], np.float64))
        centred = ((k[:2, 2] + 0.5) - offset2) - 0.5
        left, top = (int(v) for v in np.round(k[:2, 2] - centred))
        k[0, 2] -= left
        k[1, 2] -= top
        k_out = k
    d_out = None
    if depth is not None:
        import cv2
        d = np.asarray(depth)
        if d.shape != (src_h, src_w):
            raise ValueError(f'depth_z: shape {list(d.shape)} differs from the image '
                             f'{[src_h, src_w]}')
        d = cv2.resize(d, (new_w, new_h), interpolation=cv2.INTER_NEAREST)
        d_out = d[top:top + height, left:left + width]
    pil = pil.crop((left, top, left + width, top + height))
    return pil, k_out, d_out


def normalize_image(image, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Return ``[1, 3, H, W]``: ``(pixel / 255 - mean) / std`` (DINOv2 statistics) in ``dtype``."""
    arr = torch.from_numpy(np.array(image.convert('RGB') if hasattr(image, 'convert')
                                    else image, dtype=np.uint8))
    x = arr.permute(2, 0, 1).to(dtype) / 255
    mean = torch.tensor(DINOV2_MEAN, dtype=torch.float32).to(dtype).view(3, 1, 1)
    std = torch.tensor(DINOV2_STD, dtype=torch.float32).to(dtype).view(3, 1, 1)
    return ((x - mean) / std)[None]


def load_images(paths: Sequence, resize_mode: str = 'fixed_mapping', size=518,
                patch: int = 14, dtype: torch.dtype = torch.float32) -> List[Dict[str, object]]:
    """Read image files (EXIF-rotated, RGB) into ``infer`` views (SPEC §3.1)."""
    from PIL import Image, ImageOps
    images = []
    for path in paths:
        try:
            with Image.open(Path(path)) as handle:
                images.append(ImageOps.exif_transpose(handle).convert('RGB'))
        except OSError as exc:
            raise ValueError(f'{path}: not a readable image ({exc})') from exc
    return preprocess_inputs([{'img': im} for im in images], resize_mode, size, patch, dtype)


def preprocess_inputs(views: Sequence[Dict[str, object]], resize_mode: str = 'fixed_mapping',
                      size=518, patch: int = 14, dtype: torch.dtype = torch.float32
                      ) -> List[Dict[str, object]]:
    """
    Bring raw views to the model's size (SPEC §3.2).

    Each view: ``img`` (``[H, W, 3]`` uint8 array or PIL image), optional ``intrinsics``
    ``[3, 3]``, ``depth_z`` ``[H, W]`` (0 = invalid), ``camera_poses``, ``is_metric_scale``.
    Returns ``infer`` views: ``img`` ``[1, 3, h, w]`` in ``dtype``, ``intrinsics``
    ``[1, 3, 3]`` float64 (the model casts), ``depth_z`` ``[1, h, w]``, ``true_shape``, and
    poses / flags unchanged (batch dimension added).
    """
    from PIL import Image
    pils = []
    for i, view in enumerate(views):
        img = view.get('img') if isinstance(view, dict) else None
        if img is None:
            raise ValueError(f'view {i}: expected a dict with "img"')
        if not isinstance(img, Image.Image):
            arr = np.asarray(img)
            if arr.ndim != 3 or arr.shape[2] != 3 or arr.dtype != np.uint8:
                raise ValueError(f'view {i} img: expected [H, W, 3] uint8, got '
                                 f'{list(arr.shape)} {arr.dtype}')
            img = Image.fromarray(arr)
        pils.append(img)
    width, height = target_size([p.size for p in pils], resize_mode, size, patch)
    out = []
    for view, pil in zip(views, pils):
        k, d = view.get('intrinsics'), view.get('depth_z')
        image, k2, d2 = crop_resize(pil, width, height, k, d)
        item: Dict[str, object] = {'img': normalize_image(image, dtype),
                                   'data_norm_type': ['dinov2'],
                                   'true_shape': np.array([[height, width]], np.int32)}
        if k2 is not None:
            item['intrinsics'] = torch.from_numpy(k2)[None]
        if d2 is not None:
            item['depth_z'] = torch.from_numpy(np.ascontiguousarray(d2))[None]
        if view.get('camera_poses') is not None:
            pose = view['camera_poses']
            item['camera_poses'] = (pose if isinstance(pose, (tuple, list))
                                    else torch.as_tensor(np.asarray(pose))[None])
        if view.get('is_metric_scale') is not None:
            item['is_metric_scale'] = torch.as_tensor(
                np.asarray(view['is_metric_scale'], bool).reshape(1))
        out.append(item)
    return out
