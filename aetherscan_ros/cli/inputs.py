# Copyright 2026 The AetherScan ROS Authors
# SPDX-License-Identifier: Apache-2.0
"""
The image and intrinsics arguments of ``aetherscan reconstruct``.

Expands files and directories into image paths, reads images (refusing huge or float images from
their header), checks their sizes, parses ``--intrinsics`` and reads ``--camera-info``
calibration files. numpy, OpenCV and Pillow are imported only when an image is read.
"""

import os
from pathlib import Path
import re
from typing import List, Optional, Sequence, Tuple

from aetherscan_ros.cli.common import CliError

IMAGE_EXTENSIONS = ('.png', '.jpg', '.jpeg', '.bmp', '.tif', '.tiff', '.webp', '.ppm', '.pgm',
                    '.pnm', '.jp2')
MAX_SIZE_RATIO = 2.0  # long sides of the input images may differ by at most this factor
MAX_IMAGE_SIDE = 8192  # larger images are refused from their header, before any decoding
DEMO_GT_FILE = 'ground_truth.json'


def _natural_key(name: str):
    """Sort ``frame_2`` before ``frame_10``."""
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r'(\d+)', name)]


def _demo_scene_images(directory: Path) -> Optional[List[Path]]:
    """Return the images listed by a demo scene's ground_truth.json (not its depth maps)."""
    gt = directory / DEMO_GT_FILE
    if not gt.is_file():
        return None
    import json
    try:
        doc = json.loads(gt.read_text(encoding='utf-8'))
        names = [str(v['image']) for v in doc['views']]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return [directory / name for name in names]


def expand_image_args(args: Sequence[str]) -> List[Path]:
    """
    Expand files and directories into an ordered list of image paths.

    A directory contributes its files with an image extension (``IMAGE_EXTENSIONS``, any
    case), hidden files skipped, in natural order (``frame_2`` before ``frame_10``); a demo
    scene directory (with ``ground_truth.json``) contributes the RGB images it lists, not its
    depth maps. Files are taken as given, in the order given. Raises :class:`CliError` for a
    path that does not exist, a directory without images and a file given twice.
    """
    paths: List[Path] = []
    for arg in args:
        path = Path(arg)
        if path.is_dir():
            listed = _demo_scene_images(path)
            if listed is None:
                listed = sorted((p for p in path.iterdir()
                                 if p.is_file() and not p.name.startswith('.')
                                 and p.suffix.lower() in IMAGE_EXTENSIONS),
                                key=lambda p: _natural_key(p.name))
            if not listed:
                raise CliError(f'{arg}: directory has no images (looked for '
                               f'{", ".join(IMAGE_EXTENSIONS)})')
            paths.extend(listed)
        elif path.exists():
            paths.append(path)
        else:
            raise CliError(f'{arg}: no such file or directory')
    seen = {}
    for path in paths:
        key = os.path.realpath(path)
        if key in seen:
            raise CliError(f'{path}: given twice (also as {seen[key]}); every view must be a '
                           'different image')
        seen[key] = path
    return paths


def split_image_arguments(images: Sequence[str], intrinsics: Sequence[str]
                          ) -> Tuple[List[str], List[str]]:
    """
    Return ``(images, intrinsics)`` with image paths that argparse put into --intrinsics moved.

    ``--intrinsics`` takes one or more values, so in ``--intrinsics K a.png b.png`` argparse
    hands it the images too. A value that exists on disk or ends in an image extension cannot
    be ``fx,fy,cx,cy``: it goes back to the images, keeping the command-line order.
    """
    return _images_back(images, intrinsics, os.path.exists)


def split_camera_info_arguments(images: Sequence[str], camera_info: Sequence[str]
                                ) -> Tuple[List[str], List[str]]:
    """
    Return ``(images, camera_info)`` with images that argparse put into --camera-info moved.

    In ``--camera-info cam.yaml *.png`` argparse hands the images to ``--camera-info`` too. A
    directory or a file with an image extension is not a calibration file: it goes back to the
    images, keeping the command-line order.
    """
    return _images_back(images, camera_info, os.path.isdir)


def _images_back(images: Sequence[str], values: Sequence[str],
                 is_image_path) -> Tuple[List[str], List[str]]:
    """Move the ``values`` that name images (``is_image_path`` or an image extension) back."""
    images, kept = list(images), []
    for text in values:
        if is_image_path(text) or Path(text).suffix.lower() in IMAGE_EXTENSIONS:
            images.append(text)
        else:
            kept.append(text)
    return images, kept


def build_camera_models(texts: Sequence[str], paths: Sequence[Path],
                        sizes: Sequence[Tuple[int, int]]):
    """
    Return one :class:`~aetherscan_ros.core.camera_model.CameraModel` per image (or ``None`` each).

    ``texts`` holds one calibration file (camera_calibration_parsers YAML, as ROS's camera
    calibrator writes it) for all images or one per image, in order. The file's image size must
    be the image's. Raises :class:`CliError` naming the file and the reason.
    """
    if not texts:
        return [None] * len(paths)
    if len(texts) not in (1, len(paths)):
        raise CliError(f'--camera-info given {len(texts)} times for {len(paths)} images: give it '
                       'once for all images or once per image, in image order')
    from aetherscan_ros.core.calibration_file import read_calibration_yaml
    from aetherscan_ros.core.camera_model import CameraModelError
    models = {}
    for text in dict.fromkeys(texts):
        try:
            models[text] = read_calibration_yaml(text)
        except CameraModelError as exc:  # CalibrationFileError: names the file and the key
            raise CliError(f'--camera-info {exc}') from None
    result = []
    for i, path in enumerate(paths):
        text = texts[0] if len(texts) == 1 else texts[i]
        model = models[text]
        expected = model.image_size
        if all(expected) and tuple(expected) != tuple(sizes[i]):
            raise CliError(f'--camera-info {text}: describes {expected[0]}x{expected[1]} images '
                           f'but {path} is {sizes[i][0]}x{sizes[i][1]} (a calibration holds '
                           'for the resolution it was made at)')
        result.append(model)
    return result


def read_image(path: Path):
    """Read an image file as ``[H, W, 3]`` uint8 RGB; raise :class:`CliError` naming the file."""
    import cv2
    import numpy as np
    if not path.is_file():
        raise CliError(f'{path}: no such file' if not path.exists() else f'{path}: not a file')
    try:
        data = np.fromfile(str(path), np.uint8)
    except OSError as exc:
        raise CliError(f'{path}: cannot read ({exc.strerror or exc})') from None
    if data.size == 0:
        raise CliError(f'{path}: empty file, not an image')
    _check_image_header(path, data)
    bgr = cv2.imdecode(data, cv2.IMREAD_COLOR)
    if bgr is None or bgr.ndim != 3:
        raise CliError(f'{path}: not a readable image (OpenCV cannot decode it)')
    if bgr.shape[0] < 2 or bgr.shape[1] < 2:
        raise CliError(f'{path}: image {bgr.shape[1]}x{bgr.shape[0]} is too small')
    return np.ascontiguousarray(bgr[:, :, ::-1])


def _check_image_header(path: Path, data) -> None:
    """
    Refuse, from the header alone, images too large to decode safely and float images.

    A 10000x10000 PNG is a few hundred kilobytes on disk but 300 MB once decoded; a float
    image (depth, HDR) would be silently clipped to 8 bits. Formats Pillow cannot identify
    are left to OpenCV.
    """
    import io
    import warnings

    from PIL import Image as PILImage
    try:
        with warnings.catch_warnings():
            warnings.simplefilter('ignore')  # DecompressionBombWarning: we check the size
            with PILImage.open(io.BytesIO(data.tobytes())) as img:
                (width, height), mode = img.size, img.mode
    except Exception:  # noqa: B902 - not identifiable by Pillow: OpenCV decides below
        return
    if max(width, height) > MAX_IMAGE_SIDE:
        raise CliError(f'{path}: image {width}x{height} exceeds {MAX_IMAGE_SIDE} px per side; '
                       'downscale it first')
    if mode == 'F':
        raise CliError(f'{path}: a floating-point image (depth or HDR data), not an 8/16-bit '
                       'camera image')


def check_image_sizes(paths: Sequence[Path], sizes: Sequence[Tuple[int, int]]) -> None:
    """
    Refuse fewer than 2 images, or images whose long sides differ by more than 2x.

    ``sizes`` are ``(width, height)``. Images of different sizes within that factor are
    accepted (backends resize); beyond it they are almost surely from unrelated cameras.
    """
    if len(paths) < 2:
        given = f' ({paths[0]})' if paths else ''
        raise CliError(f'need at least 2 images, got {len(paths)}{given}')
    longs = [max(s) for s in sizes]
    small = min(range(len(longs)), key=lambda i: longs[i])
    large = max(range(len(longs)), key=lambda i: longs[i])
    if longs[large] > MAX_SIZE_RATIO * longs[small]:
        raise CliError(
            f'{paths[large]} ({sizes[large][0]}x{sizes[large][1]}) and {paths[small]} '
            f'({sizes[small][0]}x{sizes[small][1]}) differ in size by more than '
            f'{MAX_SIZE_RATIO:g}x: give images from cameras of similar resolution')


def parse_intrinsics(text: str, label: str) -> Tuple[float, float, float, float]:
    """Parse ``fx,fy,cx,cy`` (commas or spaces) into 4 floats; ``label`` names the argument."""
    parts = [p for p in re.split(r'[,\s]+', text.strip()) if p]
    if len(parts) != 4:
        raise CliError(f'{label} {text!r}: expected 4 numbers fx,fy,cx,cy, got {len(parts)}')
    try:
        values = tuple(float(p) for p in parts)
    except ValueError:
        raise CliError(f'{label} {text!r}: not numbers (expected fx,fy,cx,cy in pixels)') \
            from None
    if not all(v == v and abs(v) != float('inf') for v in values):
        raise CliError(f'{label} {text!r}: values must be finite')
    if values[0] <= 0 or values[1] <= 0:
        raise CliError(f'{label} {text!r}: focal lengths fx, fy must be > 0, got fx '
                       f'{values[0]:g}, fy {values[1]:g}')
    return values


def build_intrinsics(texts: Sequence[str], paths: Sequence[Path],
                     sizes: Sequence[Tuple[int, int]]):
    """
    Return one ``[3, 3]`` K per image (or ``None`` each when ``texts`` is empty).

    ``texts`` holds one ``fx,fy,cx,cy`` for all images or one per image, in order. The
    principal point must lie inside its image; one K for all needs images of one size.
    """
    import numpy as np
    if not texts:
        return [None] * len(paths)
    if len(texts) not in (1, len(paths)):
        raise CliError(f'--intrinsics given {len(texts)} times for {len(paths)} images: give it '
                       'once for all images or once per image, in image order')
    if len(texts) == 1 and len(set(sizes)) > 1:
        first = next(i for i, s in enumerate(sizes) if s != sizes[0])
        raise CliError(f'one --intrinsics for images of different sizes ({paths[0]} '
                       f'{sizes[0][0]}x{sizes[0][1]}, {paths[first]} {sizes[first][0]}x'
                       f'{sizes[first][1]}): give one --intrinsics per image')
    result = []
    for i, path in enumerate(paths):
        k = 0 if len(texts) == 1 else i
        label = '--intrinsics' if len(texts) == 1 else f'--intrinsics #{k + 1}'
        fx, fy, cx, cy = parse_intrinsics(texts[k], label)
        width, height = sizes[i]
        if not (0.0 <= cx <= width and 0.0 <= cy <= height):
            raise CliError(f'{label} {texts[k]!r}: principal point ({cx:g}, {cy:g}) lies '
                           f'outside {path} ({width}x{height})')
        result.append(np.array([[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]]))
    return result


def _display_names(paths: Sequence[Path]) -> List[str]:
    """File names for poses.json: the base name, or the path as given when names collide."""
    names = [p.name for p in paths]
    if len(set(names)) == len(names):
        return names
    return [str(p) for p in paths]
