# Copyright 2026 The AetherScan ROS Authors
# SPDX-License-Identifier: Apache-2.0
"""
Camera calibration YAML files, as ROS's camera_calibrator and camera_calibration_parsers write.

The format (``ost.yaml``; what ``camera_info_url`` points to)::

    image_width: 640
    image_height: 480
    camera_name: narrow_stereo
    camera_matrix: {rows: 3, cols: 3, data: [fx, 0, cx, 0, fy, cy, 0, 0, 1]}
    distortion_model: plumb_bob
    distortion_coefficients: {rows: 1, cols: 5, data: [k1, k2, p1, p2, k3]}
    rectification_matrix: {rows: 3, cols: 3, data: [...]}
    projection_matrix: {rows: 3, cols: 4, data: [...]}

(the matrices are block mappings in the files). As camera_calibration_parsers does, a missing
``distortion_model`` is read as ``plumb_bob``; missing ``rectification_matrix`` /
``projection_matrix`` are read as identity / ``[K | 0]`` and missing distortion as none.
Numbers yaml-cpp writes without a dot (``1e-05``), which YAML 1.1 loaders take for strings, are
read as numbers. OpenCV ``FileStorage`` files (``%YAML:1.0``, ``!!opencv-matrix``) with the same
keys are accepted too. The file holds the full-resolution calibration: binning and ROI belong
to the image stream and are not written.
"""

import json
import logging
import os
from pathlib import Path
import re
from typing import Any, Dict, Optional, Tuple, Union

import numpy as np
import yaml

from aetherscan_ros.core.camera_model import CameraModel, CameraModelError
from aetherscan_ros.files.atomic import atomic_write_text

LOGGER = logging.getLogger(__name__)

PathLike = Union[str, os.PathLike]
#: CameraModel field -> the file's key (to name the key in errors).
FIELD_KEYS = {'width': 'image_width', 'height': 'image_height', 'K': 'camera_matrix',
              'distortion_model': 'distortion_model', 'D': 'distortion_coefficients',
              'R': 'rectification_matrix', 'P': 'projection_matrix'}
_PLAIN_NAME = re.compile(r'[A-Za-z0-9_][A-Za-z0-9_./-]*\Z')


class CalibrationFileError(CameraModelError):
    """A calibration file that cannot be read; the message names the file and the key."""


class _Loader(yaml.SafeLoader):
    """Safe YAML loader that also reads OpenCV's ``!!opencv-matrix`` as a plain mapping."""


_Loader.add_constructor('tag:yaml.org,2002:opencv-matrix',
                        lambda loader, node: loader.construct_mapping(node, deep=True))


def _number(value: Any, source: str, key: str) -> float:
    if isinstance(value, bool):
        raise CalibrationFileError(f'{source}: {key}: {value!r} is not a number', key)
    try:
        return float(value)
    except (TypeError, ValueError):
        raise CalibrationFileError(f'{source}: {key}: {value!r} is not a number', key) from None


def _read_matrix(doc: Dict[str, Any], key: str, source: str,
                 shape: Optional[Tuple[int, int]]) -> Optional[np.ndarray]:
    """Return ``doc[key]`` ``{rows, cols, data}`` as an array (``None`` when absent)."""
    node = doc.get(key)
    if node is None:
        return None
    if not isinstance(node, dict):
        raise CalibrationFileError(f'{source}: {key}: expected a mapping with rows, cols and '
                                   f'data, got {type(node).__name__}', key)
    missing = [name for name in ('rows', 'cols', 'data') if name not in node]
    if missing:
        raise CalibrationFileError(f'{source}: {key}: missing {", ".join(missing)}', key)
    rows = int(_number(node['rows'], source, f'{key}.rows'))
    cols = int(_number(node['cols'], source, f'{key}.cols'))
    data = node['data']
    if not isinstance(data, list):
        raise CalibrationFileError(f'{source}: {key}.data: expected a list of numbers', key)
    if shape is not None and (rows, cols) != shape:
        raise CalibrationFileError(f'{source}: {key}: is {rows}x{cols}, expected '
                                   f'{shape[0]}x{shape[1]}', key)
    if len(data) != rows * cols:
        raise CalibrationFileError(f'{source}: {key}: data has {len(data)} values but rows x '
                                   f'cols = {rows}x{cols}', key)
    return np.array([_number(v, source, f'{key}.data') for v in data], np.float64)


def parse_calibration_yaml(text: str, source: str = '<string>') -> CameraModel:
    """Parse calibration YAML ``text``; ``source`` names it in errors (a path, usually)."""
    if text.lstrip().startswith('%YAML:1.0'):  # OpenCV FileStorage: YAML 1.0 header
        text = text.lstrip().split('\n', 1)[1] if '\n' in text.lstrip() else ''
    try:
        doc = yaml.load(text, Loader=_Loader)  # a SafeLoader subclass
    except yaml.YAMLError as exc:
        raise CalibrationFileError(f'{source}: not valid YAML: {exc}') from None
    if not isinstance(doc, dict):
        raise CalibrationFileError(f'{source}: expected a mapping of calibration keys, got '
                                   f'{type(doc).__name__}')
    for key in ('image_width', 'image_height', 'camera_matrix'):
        if key not in doc:
            raise CalibrationFileError(f'{source}: missing key {key}', key)
    sizes = {}
    for key in ('image_width', 'image_height'):
        value = _number(doc[key], source, key)
        if value != int(value) or value < 0:
            raise CalibrationFileError(f'{source}: {key}: {doc[key]!r} is not a size', key)
        sizes[key] = int(value)
    k = _read_matrix(doc, 'camera_matrix', source, (3, 3))
    d = _read_matrix(doc, 'distortion_coefficients', source, None)
    model = doc.get('distortion_model')
    if model is None:
        model = 'plumb_bob' if d is not None and d.size else ''
        if model:
            LOGGER.warning('%s does not name a distortion_model; assuming plumb_bob (as '
                           'camera_calibration_parsers does)', source)
    try:
        return CameraModel(
            width=sizes['image_width'], height=sizes['image_height'],
            distortion_model=str(model), D=tuple(d) if d is not None else (), K=k,
            R=_read_matrix(doc, 'rectification_matrix', source, (3, 3)),
            P=_read_matrix(doc, 'projection_matrix', source, (3, 4)),
            camera_name=str(doc.get('camera_name') or ''))
    except CalibrationFileError:
        raise
    except CameraModelError as exc:
        key = FIELD_KEYS.get(exc.field, exc.field)
        raise CalibrationFileError(f'{source}: {key}: {exc}', key) from None


def read_calibration_yaml(path: PathLike) -> CameraModel:
    """Read a camera_calibration_parsers YAML file; :class:`CalibrationFileError` names it."""
    try:
        text = Path(path).read_text(encoding='utf-8')
    except (OSError, UnicodeDecodeError) as exc:
        raise CalibrationFileError(f'{path}: cannot read the calibration file: {exc}') from None
    return parse_calibration_yaml(text, str(path))


def _float_text(value: float) -> str:
    """Shortest round-trip text that YAML 1.1 loaders also read as a float (``1.0e-05``)."""
    text = repr(float(value))
    if 'e' in text and '.' not in text:
        mantissa, exponent = text.split('e')
        text = f'{mantissa}.0e{exponent}'
    return text


def _matrix_text(key: str, values: np.ndarray, rows: int, cols: int) -> str:
    data = ', '.join(_float_text(v) for v in np.asarray(values, np.float64).reshape(-1))
    return f'{key}:\n  rows: {rows}\n  cols: {cols}\n  data: [{data}]\n'


def calibration_yaml_text(model: CameraModel) -> str:
    """
    Return ``model`` in camera_calibration_parsers' YAML layout.

    A model without distortion is written as ``plumb_bob`` with five zeros (what drivers
    publish and every reader accepts). Binning and ROI are not part of the format.
    """
    name = model.camera_name
    name_text = name if _PLAIN_NAME.match(name) else json.dumps(name)  # JSON str = YAML str
    dist_model = model.distortion_model or 'plumb_bob'
    d = model.D if model.distortion_model else (0.0,) * 5
    return (f'image_width: {model.width}\n'
            f'image_height: {model.height}\n'
            f'camera_name: {name_text}\n'
            + _matrix_text('camera_matrix', model.K, 3, 3)
            + f'distortion_model: {dist_model}\n'
            + _matrix_text('distortion_coefficients', np.asarray(d), 1, len(d))
            + _matrix_text('rectification_matrix', model.R, 3, 3)
            + _matrix_text('projection_matrix', model.P, 3, 4))


def write_calibration_yaml(model: CameraModel, path: PathLike) -> Path:
    """Write ``model`` to ``path`` atomically (parent folders are created); return the path."""
    path = Path(path)
    if model.width <= 0 or model.height <= 0:
        raise CalibrationFileError(f'{path}: image_width: a calibration file needs the image '
                                   f'size, the model has {model.width}x{model.height}',
                                   'image_width')
    path.parent.mkdir(parents=True, exist_ok=True)
    return atomic_write_text(path, calibration_yaml_text(model))
