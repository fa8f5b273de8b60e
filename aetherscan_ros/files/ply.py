# Copyright 2026 The AetherScan ROS Authors
# SPDX-License-Identifier: Apache-2.0
"""
Reading and writing ``cloud.ply``.

``cloud.ply`` is a binary little-endian PLY with one ``vertex`` element whose properties are
``x, y, z`` (float32, world frame = optical frame of view 0), ``red, green, blue`` (uchar),
``confidence`` (float32, higher is better) and ``view`` (ushort, the view the point came from):
21 bytes per point. MeshLab, CloudCompare, Open3D and PCL read it as a colored cloud.

The file is written atomically (:mod:`aetherscan_ros.files.atomic`); :func:`read_ply` also reads
other PLY layouts (either binary endianness, ASCII, float colors, extra elements).
"""

from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence, Tuple

import numpy as np

from aetherscan_ros import __version__
from aetherscan_ros.files.atomic import atomic_write_bytes, PathLike
from aetherscan_ros.files.errors import ResultFormatError

# The on-disk vertex layout written by write_ply (packed, little-endian, 21 bytes).
PLY_VERTEX_DTYPE = np.dtype([
    ('x', '<f4'), ('y', '<f4'), ('z', '<f4'),
    ('red', 'u1'), ('green', 'u1'), ('blue', 'u1'),
    ('confidence', '<f4'), ('view', '<u2'),
])

_PLY_TYPES = {
    'char': 'i1', 'int8': 'i1', 'uchar': 'u1', 'uint8': 'u1',
    'short': 'i2', 'int16': 'i2', 'ushort': 'u2', 'uint16': 'u2',
    'int': 'i4', 'int32': 'i4', 'uint': 'u4', 'uint32': 'u4',
    'float': 'f4', 'float32': 'f4', 'double': 'f8', 'float64': 'f8',
}
_PLY_NAMES = {'f4': 'float', 'u1': 'uchar', 'u2': 'ushort'}
_MAX_HEADER_BYTES = 1 << 16


@dataclass(frozen=True)
class PlyCloud:
    """
    A point cloud read from a PLY file.

    ``points`` ``[N, 3]`` float32; ``colors`` ``[N, 3]`` uint8 RGB (128 grey when the file has
    none); ``confidence`` ``[N]`` float32 (1 when absent); ``view_index`` ``[N]`` uint16
    (0 when absent); ``properties`` the vertex property names found in the file, in order;
    ``comments`` the header comments.
    """

    points: np.ndarray
    colors: np.ndarray
    confidence: np.ndarray
    view_index: np.ndarray
    properties: Tuple[str, ...] = ()
    comments: Tuple[str, ...] = ()

    @property
    def num_points(self) -> int:
        """Return the number of points."""
        return int(self.points.shape[0])


def _check_cloud_arrays(points, colors, confidence, view_index):
    points = np.asarray(points)
    if points.ndim != 2 or points.shape[1] != 3:
        raise ValueError(f'points must be [N, 3], got shape {points.shape}')
    n = points.shape[0]
    colors = np.zeros((n, 3), np.uint8) + 128 if colors is None else np.asarray(colors)
    confidence = np.ones(n, np.float32) if confidence is None else np.asarray(confidence)
    view_index = np.zeros(n, np.uint16) if view_index is None else np.asarray(view_index)
    if colors.shape != (n, 3):
        raise ValueError(f'colors must be [{n}, 3], got shape {colors.shape}')
    if confidence.shape != (n,):
        raise ValueError(f'confidence must be [{n}], got shape {confidence.shape}')
    if view_index.shape != (n,):
        raise ValueError(f'view_index must be [{n}], got shape {view_index.shape}')
    if colors.dtype != np.uint8:
        if colors.size and (colors.min() < 0 or colors.max() > 255):
            raise ValueError('colors must be uint8 or integers in 0..255')
        colors = colors.astype(np.uint8)
    if view_index.size and (view_index.min() < 0 or view_index.max() > 65535):
        raise ValueError('view_index must fit in uint16 (0..65535)')
    return points, colors, confidence, view_index


def encode_ply(points: np.ndarray, colors: Optional[np.ndarray] = None,
               confidence: Optional[np.ndarray] = None, view_index: Optional[np.ndarray] = None,
               comments: Sequence[str] = ()) -> bytes:
    """
    Return the bytes of a binary little-endian PLY (layout in the module docstring).

    ``points`` ``[N, 3]``, ``colors`` ``[N, 3]`` uint8, ``confidence`` ``[N]``,
    ``view_index`` ``[N]`` (defaults: grey, 1, 0). ``comments`` become header comment lines
    (newlines replaced by spaces).
    """
    points, colors, confidence, view_index = _check_cloud_arrays(
        points, colors, confidence, view_index)
    n = points.shape[0]
    header = ['ply', 'format binary_little_endian 1.0',
              f'comment aetherscan_ros {__version__}']
    header += ['comment ' + ' '.join(str(c).split()) for c in comments]
    header.append(f'element vertex {n}')
    for prop in PLY_VERTEX_DTYPE.names:
        header.append(f'property {_PLY_NAMES[PLY_VERTEX_DTYPE[prop].str[1:]]} {prop}')
    header.append('end_header')
    body = np.empty(n, PLY_VERTEX_DTYPE)
    body['x'] = points[:, 0]
    body['y'] = points[:, 1]
    body['z'] = points[:, 2]
    body['red'] = colors[:, 0]
    body['green'] = colors[:, 1]
    body['blue'] = colors[:, 2]
    body['confidence'] = confidence
    body['view'] = view_index
    return ('\n'.join(header) + '\n').encode('ascii') + body.tobytes()


def write_ply(path: PathLike, points: np.ndarray, colors: Optional[np.ndarray] = None,
              confidence: Optional[np.ndarray] = None, view_index: Optional[np.ndarray] = None,
              comments: Sequence[str] = ()) -> Path:
    """Write a binary little-endian PLY atomically; return ``path``. See :func:`encode_ply`."""
    return atomic_write_bytes(path, encode_ply(points, colors, confidence, view_index, comments))


def _parse_ply_header(path: Path, raw: bytes):
    """Return ``(fmt, elements, comments, header_len)``; elements = [(name, count, props)]."""
    end = raw.find(b'end_header')
    if not raw.startswith(b'ply') or end < 0:
        what = 'no "end_header" line' if raw.startswith(b'ply') else 'does not start with "ply"'
        raise ResultFormatError(f'{path}: not a PLY file ({what})')
    newline = raw.find(b'\n', end)
    if newline < 0:
        raise ResultFormatError(f'{path}: truncated PLY header')
    header_len = newline + 1
    try:
        lines = raw[:end].decode('ascii').splitlines()
    except UnicodeDecodeError:
        raise ResultFormatError(f'{path}: PLY header is not ASCII') from None
    fmt = None
    elements = []
    comments = []
    for number, line in enumerate(lines[1:], start=2):
        words = line.split()
        if not words or words[0] in ('obj_info',):
            continue
        if words[0] == 'comment':
            comments.append(line[len('comment'):].strip())
        elif words[0] == 'format' and len(words) == 3:
            fmt = words[1]
        elif words[0] == 'element' and len(words) == 3 and words[2].isdigit():
            elements.append((words[1], int(words[2]), []))
        elif words[0] == 'property' and elements and len(words) == 3 \
                and words[1] in _PLY_TYPES:
            elements[-1][2].append((words[2], _PLY_TYPES[words[1]]))
        elif words[0] == 'property' and elements and len(words) == 5 and words[1] == 'list':
            elements[-1][2].append((words[4], 'list'))
        else:
            raise ResultFormatError(f'{path}: PLY header line {number} not understood: {line!r}')
    if fmt not in ('binary_little_endian', 'binary_big_endian', 'ascii'):
        raise ResultFormatError(f'{path}: unsupported PLY format {fmt!r}')
    return fmt, elements, tuple(comments), header_len


def read_ply(path: PathLike) -> PlyCloud:
    """
    Read the ``vertex`` element of a PLY file (binary either endianness, or ASCII).

    Needs ``x, y, z``; reads ``red, green, blue`` (uchar or float in [0, 1]), ``confidence``
    and ``view`` when present. Raises :class:`ResultFormatError` naming the file for missing,
    malformed or truncated files.
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ResultFormatError(f'{path}: no such file') from None
    except OSError as exc:
        raise ResultFormatError(f'{path}: cannot read: {exc.strerror or exc}') from None
    fmt, elements, comments, header_len = _parse_ply_header(path, raw[:_MAX_HEADER_BYTES])
    names = [e[0] for e in elements]
    if 'vertex' not in names:
        raise ResultFormatError(f'{path}: PLY has no "vertex" element')
    vertex_pos = names.index('vertex')
    _, count, props = elements[vertex_pos]
    if any(kind == 'list' for _, kind in props):
        raise ResultFormatError(f'{path}: list properties in "vertex" are not supported')
    prop_names = tuple(p for p, _ in props)
    for needed in ('x', 'y', 'z'):
        if needed not in prop_names:
            raise ResultFormatError(f'{path}: PLY vertex has no "{needed}" property')
    if fmt == 'ascii':
        if vertex_pos != 0:
            raise ResultFormatError(f'{path}: ASCII PLY with elements before "vertex" '
                                    'is not supported')
        text = raw[header_len:].decode('ascii', errors='replace').splitlines()
        rows = [line.split() for line in text if line.strip()][:count]
        if len(rows) < count or any(len(r) != len(props) for r in rows):
            raise ResultFormatError(f'{path}: ASCII PLY has {len(rows)} well-formed vertex '
                                    f'lines, header says {count}')
        try:
            table = np.array(rows, dtype=np.float64).reshape(count, len(props))
        except ValueError:
            raise ResultFormatError(f'{path}: ASCII PLY vertex data is not numeric') from None
        columns = {name: table[:, i] for i, name in enumerate(prop_names)}
    else:
        order = '<' if fmt == 'binary_little_endian' else '>'
        offset = header_len
        for name, n, eprops in elements[:vertex_pos]:
            if any(kind == 'list' for _, kind in eprops):
                raise ResultFormatError(f'{path}: element {name!r} with list properties before '
                                        '"vertex" is not supported')
            offset += n * sum(np.dtype(kind).itemsize for _, kind in eprops)
        dtype = np.dtype([(name, order + kind) for name, kind in props])
        needed = count * dtype.itemsize
        available = len(raw) - offset
        if available < needed:
            raise ResultFormatError(f'{path}: truncated: {count} vertices need {needed} bytes, '
                                    f'the file has {max(available, 0)}')
        table = np.frombuffer(raw, dtype=dtype, count=count, offset=offset)
        columns = {name: table[name] for name in prop_names}
    points = np.stack([columns['x'], columns['y'], columns['z']], axis=1).astype(np.float32)
    if all(c in columns for c in ('red', 'green', 'blue')):
        rgb = np.stack([columns['red'], columns['green'], columns['blue']], axis=1)
        if rgb.dtype.kind == 'f':
            scale = 255.0 if rgb.size and float(np.nanmax(rgb)) <= 1.0 else 1.0
            rgb = np.clip(np.nan_to_num(rgb) * scale + 0.5, 0, 255)
        colors = rgb.astype(np.uint8)
    else:
        colors = np.full((count, 3), 128, np.uint8)
    confidence = (np.asarray(columns['confidence'], np.float32) if 'confidence' in columns
                  else np.ones(count, np.float32))
    view_index = (np.asarray(columns['view'], np.uint16) if 'view' in columns
                  else np.zeros(count, np.uint16))
    return PlyCloud(points, colors, confidence, view_index, prop_names, comments)


__all__ = ['PLY_VERTEX_DTYPE', 'PlyCloud', 'ResultFormatError', 'encode_ply', 'read_ply',
           'write_ply']
