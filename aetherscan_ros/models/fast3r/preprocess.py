# Copyright 2026 The AetherScan ROS Authors
# SPDX-License-Identifier: Apache-2.0
"""
Image preprocessing identical to upstream ``load_images(size=512)`` (SPEC §3).

Long side resized to ``size`` with PIL (LANCZOS when shrinking, BICUBIC otherwise), centre crop
to multiples of 16 (a square becomes 4:3), then ``(x / 255 - 0.5) / 0.5``. The scale and crop
are kept, so intrinsics can be mapped between the input image and the network's pixels.

One deviation: upstream crops a square to a height of exactly 3/4 of its width, which is not a
multiple of 16 for most sizes (224 -> 168) and then fails in the patch embedding. We round that
height down to a multiple of the patch size (224 -> 160); where 3/4 is already a multiple
(512 -> 384, 448 -> 336, 384 -> 288, the parity fixture's 64 -> 48) nothing changes.
"""

from dataclasses import dataclass
from pathlib import Path
from typing import Tuple, Union

import numpy as np
from PIL import Image, ImageOps
import torch


@dataclass(frozen=True)
class PreprocessedView:
    """
    One image as the network sees it, plus how it maps back to the input image.

    Attributes
    ----------
    tensor : torch.Tensor
        ``[1, 3, H, W]`` float32 in [-1, 1].
    rgb : np.ndarray
        ``[H, W, 3]`` uint8, the cropped resized pixels (the point colours).
    input_size : tuple of int
        ``(width, height)`` of the original image.
    resized_size : tuple of int
        ``(width, height)`` after the resize, before the crop.
    crop_offset : tuple of int
        ``(left, top)`` of the crop box in the resized image.

    """

    tensor: torch.Tensor
    rgb: np.ndarray
    input_size: Tuple[int, int]
    resized_size: Tuple[int, int]
    crop_offset: Tuple[int, int]

    @property
    def size(self) -> Tuple[int, int]:
        """Return ``(width, height)`` of the network input."""
        return int(self.rgb.shape[1]), int(self.rgb.shape[0])

    @property
    def scale(self) -> Tuple[float, float]:
        """Return ``(sx, sy)``: resized / input size per axis."""
        return (self.resized_size[0] / self.input_size[0],
                self.resized_size[1] / self.input_size[1])

    def K_to_network(self, K: np.ndarray) -> np.ndarray:  # noqa: N802 (K is the usual name)
        """
        Map a pinhole ``K`` ``[3, 3]`` of the input image to the network pixels.

        Pixel centres sit at integer coordinates (OpenCV); a resize by ``s`` maps ``u`` to
        ``s (u + 0.5) - 0.5``; the crop subtracts its offset.
        """
        return self._affine() @ np.asarray(K, np.float64)

    def K_to_input(self, K: np.ndarray) -> np.ndarray:  # noqa: N802
        """Map a pinhole ``K`` ``[3, 3]`` of the network pixels back to the input image."""
        return np.linalg.inv(self._affine()) @ np.asarray(K, np.float64)

    def _affine(self) -> np.ndarray:
        sx, sy = self.scale
        left, top = self.crop_offset
        return np.array([[sx, 0.0, 0.5 * sx - 0.5 - left],
                         [0.0, sy, 0.5 * sy - 0.5 - top],
                         [0.0, 0.0, 1.0]])


def load_image_file(path: Union[str, Path]) -> np.ndarray:
    """Read an image file as ``[H, W, 3]`` uint8 RGB, applying its EXIF orientation."""
    try:
        with Image.open(path) as img:
            img = ImageOps.exif_transpose(img)
            return np.asarray(img.convert('RGB'))
    except (OSError, ValueError) as exc:
        raise ValueError(f'{path}: cannot read as an image: {exc}') from exc


def preprocess_image(image: Union[np.ndarray, Image.Image], size: int = 512,
                     patch_size: int = 16, name: str = 'image') -> PreprocessedView:
    """
    Resize, crop and normalise one RGB image (``[H, W, 3]`` uint8) as upstream does.

    ``name`` appears in error messages (a file name or ``topic@stamp``).
    """
    if isinstance(image, Image.Image):
        pil = image.convert('RGB')
    else:
        arr = np.asarray(image)
        if arr.ndim != 3 or arr.shape[2] != 3 or arr.dtype != np.uint8:
            raise ValueError(f'{name}: expected an RGB image [H, W, 3] uint8, got '
                             f'{arr.shape} {arr.dtype}')
        pil = Image.fromarray(arr, 'RGB')
    w1, h1 = pil.size
    if min(w1, h1) < 1:
        raise ValueError(f'{name}: empty image {w1}x{h1}')
    longest = max(w1, h1)
    resample = Image.LANCZOS if longest > size else Image.BICUBIC
    new_size = tuple(int(round(x * size / longest)) for x in (w1, h1))
    if min(new_size) < 1:
        raise ValueError(f'{name}: {w1}x{h1} is too small or too elongated to resize to a long '
                         f'side of {size}')
    resized = pil.resize(new_size, resample)
    w, h = resized.size
    cx, cy = w // 2, h // 2
    halfw = ((2 * cx) // patch_size) * patch_size // 2
    halfh = ((2 * cy) // patch_size) * patch_size // 2
    if w == h:
        # square -> 4:3, the height rounded down to a multiple of the patch size
        halfh = (3 * halfw // 2) // patch_size * patch_size // 2
    if halfw < 1 or halfh < 1:
        raise ValueError(f'{name}: {w1}x{h1} becomes {w}x{h} at size {size}, too small to crop '
                         f'to a multiple of {patch_size} pixels (needs an aspect ratio below '
                         f'{size // patch_size}:1)')
    box = (cx - halfw, cy - halfh, cx + halfw, cy + halfh)
    rgb = np.asarray(resized.crop(box))
    tensor = torch.from_numpy(rgb.copy()).permute(2, 0, 1).float().div(255.0)
    tensor = ((tensor - 0.5) / 0.5)[None]
    return PreprocessedView(tensor=tensor, rgb=rgb, input_size=(w1, h1), resized_size=(w, h),
                            crop_offset=(box[0], box[1]))
