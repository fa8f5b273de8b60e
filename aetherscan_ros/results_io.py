# Copyright 2026 The AetherScan ROS Authors
# SPDX-License-Identifier: Apache-2.0
"""
Reading and writing reconstruction results: ``cloud.ply`` and ``poses.json``.

``cloud.ply`` is a binary little-endian PLY with one ``vertex`` element whose properties are
``x, y, z`` (float32, world frame = optical frame of view 0), ``red, green, blue`` (uchar),
``confidence`` (float32, higher is better) and ``view`` (ushort, the view the point came from):
21 bytes per point. MeshLab, CloudCompare, Open3D and PCL read it as a colored cloud.

``poses.json`` lists, per input image, its file name, image size, the 3x3 pinhole ``K`` for that
size and the 4x4 ``camera_to_world`` transform (row-major; camera optical frame REP-103:
x right, y down, z forward; world = optical frame of the first camera), plus which backend
produced the result, its ``info`` and ``timings``.

Every file is written atomically: to a temporary file in the same directory, flushed and
fsync'ed, then renamed over the target with :func:`os.replace`, so a reader (or a crash, or
Ctrl-C) never sees half a file. :func:`safe_output_path` keeps caller-chosen names (the node's
``~/save`` service) inside an output directory.
"""

from contextlib import contextmanager
from dataclasses import dataclass
import json
import logging
import os
from pathlib import Path
import secrets
import sys
from typing import Callable, Iterator, Mapping, Optional, Sequence, Tuple, Union

import numpy as np

from aetherscan_ros import __version__
from aetherscan_ros.backends.base import ReconstructionResult

_LOG = logging.getLogger(__name__)

PathLike = Union[str, os.PathLike]

CLOUD_FILE = 'cloud.ply'
POSES_FILE = 'poses.json'
PREVIEW_FILE = 'preview.png'
POSES_FORMAT = 'aetherscan_ros/poses'
POSES_VERSION = 1
FRAME_DESCRIPTION = ('world = optical frame of the first camera (REP-103: x right, y down, '
                     'z forward); camera_to_world maps camera optical-frame points to world')

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


class ResultFormatError(ValueError):
    """A result file is missing, malformed or inconsistent; the message names the file."""


# --------------------------------------------------------------------------- atomic writes


@contextmanager
def atomic_open(path: PathLike, mode: str = 'wb') -> Iterator:
    """
    Open a temporary file beside ``path``; on success fsync it and rename it onto ``path``.

    The temporary file (``.NAME.<random>.tmp`` in the same directory, so the rename never
    crosses file systems) is removed if the ``with`` body raises, including on
    ``KeyboardInterrupt``; ``path`` then keeps its previous content, if any. The new file gets
    the usual ``0666 & ~umask`` permissions.
    """
    if mode not in ('wb', 'w'):
        raise ValueError(f'atomic_open supports modes wb and w, not {mode!r}')
    path = Path(path)
    directory = path.parent
    tmp = directory / f'.{path.name}.{secrets.token_hex(4)}.tmp'
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, 'O_CLOEXEC', 0), 0o666)
    try:
        with os.fdopen(fd, mode, **({'encoding': 'utf-8'} if mode == 'w' else {})) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    _fsync_dir(directory)


def _fsync_dir(directory: Path) -> None:
    """Make a rename durable (best effort; not every platform can open a directory)."""
    if sys.platform.startswith('win'):
        return
    try:
        dir_fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dir_fd)
    except OSError:
        pass
    finally:
        os.close(dir_fd)


def atomic_write_bytes(path: PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (temp file in the same directory + rename)."""
    with atomic_open(path, 'wb') as handle:
        handle.write(data)
    return Path(path)


def atomic_write_text(path: PathLike, text: str) -> Path:
    """Write UTF-8 ``text`` to ``path`` atomically."""
    return atomic_write_bytes(path, text.encode('utf-8'))


def safe_output_path(output_dir: PathLike, name: str) -> Path:
    """
    Return ``output_dir / name`` resolved, refusing any ``name`` that escapes ``output_dir``.

    ``name`` is a relative path chosen by a caller (a service request, a command line). It is
    refused (``ValueError`` with the reason) when it is empty, absolute, contains a NUL byte,
    or resolves outside ``output_dir`` through ``..`` components or symbolic links. The
    returned path need not exist; ``output_dir`` itself is never returned for ``''`` or ``.``.
    """
    if not isinstance(name, str):
        raise ValueError(f'output name must be a string, got {type(name).__name__}')
    if not name or not name.strip() or name.strip() in ('.', './'):
        raise ValueError('output name is empty: give a file or directory name')
    if '\0' in name:
        raise ValueError(f'output name {name!r} contains a NUL byte')
    if os.path.isabs(name) or name.startswith('~'):
        raise ValueError(f'output name {name!r} is absolute: give a name relative to '
                         f'{output_dir}')
    base = Path(os.path.realpath(output_dir))
    target = Path(os.path.realpath(base / name))
    if target == base or os.path.commonpath([str(base), str(target)]) != str(base):
        raise ValueError(f'output name {name!r} escapes the output directory {base}')
    return target


def save_directory_atomically(output_dir: PathLike, name: str,
                              fill: Callable[[Path], None], max_tries: int = 1000) -> Path:
    """
    Create ``output_dir/name`` with everything ``fill(directory)`` writes, as one atomic step.

    ``fill`` writes into a hidden temporary directory inside ``output_dir`` (created if
    needed); only when it returns is that directory renamed to ``name``, or to ``name_2``,
    ``name_3``... when the name is taken, so an existing result is never overwritten and a
    failure (or a crash) never leaves a partial result under ``name``. The temporary directory
    is removed when ``fill`` raises. ``name`` must be one plain path component (``ValueError``
    otherwise) and the final path goes through :func:`safe_output_path`, so nothing is ever
    written outside ``output_dir``, also not through a symbolic link planted under ``name``
    (a taken name, which is skipped). Returns the final directory.
    """
    import shutil
    if not isinstance(name, str) or not name.strip() or name in ('.', '..') or \
            '/' in name or os.sep in name or '\0' in name:
        raise ValueError(f'output name {name!r} must be one plain file name inside '
                         f'{output_dir}')
    base = Path(os.path.realpath(output_dir))
    base.mkdir(parents=True, exist_ok=True)
    tmp = base / f'.{Path(name).name}.{secrets.token_hex(4)}.tmp'
    tmp.mkdir()
    try:
        fill(tmp)
        for attempt in range(1, max_tries + 1):
            label = name if attempt == 1 else f'{name}_{attempt}'
            if os.path.lexists(base / label):  # taken (a directory, a file or any link)
                continue
            candidate = safe_output_path(base, label)
            try:
                os.rename(tmp, candidate)  # fails rather than replace a non-empty directory
            except OSError:
                if os.path.lexists(candidate):  # taken between the check and the rename
                    continue
                raise
            _fsync_dir(base)
            return candidate
        raise FileExistsError(f'{base}: {name} and {max_tries - 1} numbered variants exist')
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


# --------------------------------------------------------------------------- PLY


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


# --------------------------------------------------------------------------- poses.json


@dataclass(frozen=True)
class PosesFile:
    """
    The content of a ``poses.json``.

    ``names`` per-view file names; ``poses_c2w`` ``[V, 4, 4]`` float64; ``intrinsics``
    ``[V, 3, 3]`` float64; ``image_sizes`` ``[V, 2]`` int64 ``(width, height)``; ``backend``,
    ``info``, ``timings`` as in :class:`ReconstructionResult`; ``num_points`` as written.
    Views written as unregistered (``null`` pose or K) read back as all-NaN matrices.
    """

    names: Tuple[str, ...]
    poses_c2w: np.ndarray
    intrinsics: np.ndarray
    image_sizes: np.ndarray
    backend: str
    info: Mapping[str, object]
    timings: Mapping[str, float]
    num_points: int = 0


def _jsonable(value):
    """Convert numpy scalars/arrays (and anything else unknown) for ``json.dumps``."""
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (Path, os.PathLike)):
        return os.fspath(value)
    return str(value)


def _matrix_or_none(array: np.ndarray):
    """Return a finite matrix as nested lists, or ``None`` when it has any non-finite entry."""
    array = np.asarray(array, np.float64)
    return array.tolist() if np.all(np.isfinite(array)) else None


def poses_document(result: ReconstructionResult,
                   image_names: Optional[Sequence[str]] = None) -> dict:
    """
    Return the ``poses.json`` content for ``result`` as a JSON-able ``dict``.

    ``image_names`` (one per view) default to ``view_000``, ``view_001``... A view whose pose
    is not finite (a backend could not register it) is written with ``"registered": false``
    and ``"camera_to_world": null`` (likewise ``"K": null`` for a non-finite K).
    """
    count = result.num_views
    if image_names is None:
        image_names = [f'view_{i:03d}' for i in range(count)]
    image_names = [str(n) for n in image_names]
    if len(image_names) != count:
        raise ValueError(f'{len(image_names)} image names for a result with {count} views')
    if result.intrinsics.shape != (count, 3, 3) or result.poses_c2w.shape != (count, 4, 4):
        raise ValueError(f'result has poses {result.poses_c2w.shape} and intrinsics '
                         f'{result.intrinsics.shape}, expected [{count}, 4, 4] and '
                         f'[{count}, 3, 3]')
    sizes = np.asarray(result.image_sizes).reshape(-1, 2)
    if sizes.shape[0] != count:
        raise ValueError(f'result has {sizes.shape[0]} image sizes for {count} views')
    views = []
    for i in range(count):
        pose = _matrix_or_none(result.poses_c2w[i])
        views.append({
            'index': i,
            'file': image_names[i],
            'registered': pose is not None,
            'width': int(sizes[i, 0]),
            'height': int(sizes[i, 1]),
            'K': _matrix_or_none(result.intrinsics[i]),
            'camera_to_world': pose,
        })
    return {
        'format': POSES_FORMAT,
        'version': POSES_VERSION,
        'generator': f'aetherscan_ros {__version__}',
        'frame': FRAME_DESCRIPTION,
        'backend': str(result.backend),
        'num_views': count,
        'num_points': result.num_points,
        'timings': {str(k): float(v) for k, v in dict(result.timings).items()},
        'info': dict(result.info),
        'views': views,
    }


def write_poses_json(path: PathLike, result: ReconstructionResult,
                     image_names: Optional[Sequence[str]] = None) -> Path:
    """Write ``poses.json`` for ``result`` atomically; return ``path``."""
    text = json.dumps(poses_document(result, image_names), indent=2, default=_jsonable,
                      allow_nan=False)
    return atomic_write_text(path, text + '\n')


def _matrix(path: Path, view: dict, key: str, shape: Tuple[int, int], index: int) -> np.ndarray:
    if key in view and view[key] is None:  # an unregistered view
        return np.full(shape, np.nan)
    try:
        value = np.asarray(view[key], np.float64)
    except KeyError:
        raise ResultFormatError(f'{path}: view {index} has no "{key}"') from None
    except (TypeError, ValueError):
        raise ResultFormatError(f'{path}: view {index} "{key}" is not a numeric matrix') from None
    if value.shape != shape or not np.all(np.isfinite(value)):
        raise ResultFormatError(f'{path}: view {index} "{key}" must be a finite '
                                f'{shape[0]}x{shape[1]} matrix, got shape {value.shape}')
    return value


def read_poses_json(path: PathLike) -> PosesFile:
    """Read and validate a ``poses.json``; raise :class:`ResultFormatError` naming the file."""
    path = Path(path)
    try:
        doc = json.loads(path.read_text(encoding='utf-8'))
    except FileNotFoundError:
        raise ResultFormatError(f'{path}: no such file') from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ResultFormatError(f'{path}: cannot read: {exc}') from None
    except json.JSONDecodeError as exc:
        raise ResultFormatError(f'{path}: not valid JSON ({exc.msg} at line {exc.lineno})') \
            from None
    if not isinstance(doc, dict) or doc.get('format') != POSES_FORMAT:
        raise ResultFormatError(f'{path}: not an aetherscan poses file (format != '
                                f'{POSES_FORMAT!r})')
    if doc.get('version') != POSES_VERSION:
        raise ResultFormatError(f'{path}: poses file version {doc.get("version")!r} is not '
                                f'supported (expected {POSES_VERSION})')
    views = doc.get('views')
    if not isinstance(views, list) or not views:
        raise ResultFormatError(f'{path}: "views" must be a non-empty list')
    names, poses, intrinsics, sizes = [], [], [], []
    for i, view in enumerate(views):
        if not isinstance(view, dict):
            raise ResultFormatError(f'{path}: view {i} is not an object')
        names.append(str(view.get('file', f'view_{i:03d}')))
        poses.append(_matrix(path, view, 'camera_to_world', (4, 4), i))
        intrinsics.append(_matrix(path, view, 'K', (3, 3), i))
        width, height = view.get('width'), view.get('height')
        if not (isinstance(width, int) and isinstance(height, int) and width > 0 and height > 0):
            raise ResultFormatError(f'{path}: view {i} needs positive integer width/height')
        sizes.append((width, height))
    timings = doc.get('timings') or {}
    info = doc.get('info') or {}
    if not isinstance(timings, dict) or not isinstance(info, dict):
        raise ResultFormatError(f'{path}: "timings" and "info" must be objects')
    return PosesFile(
        names=tuple(names), poses_c2w=np.stack(poses), intrinsics=np.stack(intrinsics),
        image_sizes=np.asarray(sizes, np.int64), backend=str(doc.get('backend', '')),
        info=info, timings={str(k): float(v) for k, v in timings.items()
                            if isinstance(v, (int, float))},
        num_points=int(doc.get('num_points', 0) or 0))


# --------------------------------------------------------------------------- whole results


def finite_subset(result: ReconstructionResult) -> Tuple[ReconstructionResult, int]:
    """Return ``(result without non-finite points, number dropped)``."""
    keep = np.all(np.isfinite(result.points), axis=1)
    dropped = int(keep.size - np.count_nonzero(keep))
    if not dropped:
        return result, 0
    return ReconstructionResult(
        points=result.points[keep], colors=result.colors[keep],
        confidence=result.confidence[keep], view_index=result.view_index[keep],
        poses_c2w=result.poses_c2w, intrinsics=result.intrinsics,
        image_sizes=result.image_sizes, backend=result.backend, timings=result.timings,
        info=result.info), dropped


def save_result(result: ReconstructionResult, out_dir: PathLike,
                image_names: Optional[Sequence[str]] = None) -> Path:
    """
    Write ``out_dir/cloud.ply`` and ``out_dir/poses.json`` (each atomically); return out_dir.

    ``out_dir`` is created if needed. Points with non-finite coordinates are dropped (with a
    warning). ``image_names`` label the views in ``poses.json`` (default ``view_000``...).
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    result, dropped = finite_subset(result)
    if dropped:
        _LOG.warning('dropped %d points with non-finite coordinates before writing %s',
                     dropped, out_dir / CLOUD_FILE)
    doc = poses_document(result, image_names)  # validate before writing anything
    comments = [f'backend {result.backend}', 'frame ' + FRAME_DESCRIPTION.split(';')[0]]
    write_ply(out_dir / CLOUD_FILE, result.points, result.colors, result.confidence,
              result.view_index, comments)
    atomic_write_text(out_dir / POSES_FILE,
                      json.dumps(doc, indent=2, default=_jsonable, allow_nan=False) + '\n')
    return out_dir


def load_result(result_dir: PathLike) -> Tuple[ReconstructionResult, Tuple[str, ...]]:
    """
    Read ``cloud.ply`` + ``poses.json`` from ``result_dir``; return ``(result, names)``.

    Raises :class:`ResultFormatError` naming the missing or malformed file, or when a point's
    view index refers to a view that ``poses.json`` does not have.
    """
    result_dir = Path(result_dir)
    if not result_dir.is_dir():
        raise ResultFormatError(f'{result_dir}: not a directory')
    poses = read_poses_json(result_dir / POSES_FILE)
    cloud = read_ply(result_dir / CLOUD_FILE)
    if cloud.num_points and int(cloud.view_index.max()) >= len(poses.names):
        raise ResultFormatError(f'{result_dir / CLOUD_FILE}: points refer to view '
                                f'{int(cloud.view_index.max())} but {POSES_FILE} has '
                                f'{len(poses.names)} views')
    result = ReconstructionResult(
        points=cloud.points, colors=cloud.colors, confidence=cloud.confidence,
        view_index=cloud.view_index, poses_c2w=poses.poses_c2w, intrinsics=poses.intrinsics,
        image_sizes=poses.image_sizes, backend=poses.backend, timings=dict(poses.timings),
        info=dict(poses.info))
    return result, poses.names


def format_size(num_bytes: float) -> str:
    """Return a human-readable byte count (``'1.5 MB'``)."""
    for unit in ('B', 'kB', 'MB', 'GB'):
        if abs(num_bytes) < 1000 or unit == 'GB':
            return f'{num_bytes:.0f} {unit}' if unit == 'B' else f'{num_bytes:.1f} {unit}'
        num_bytes /= 1000.0
    return f'{num_bytes:.1f} GB'  # pragma: no cover


__all__ = [
    'CLOUD_FILE', 'POSES_FILE', 'PREVIEW_FILE', 'PLY_VERTEX_DTYPE', 'PlyCloud', 'PosesFile',
    'ResultFormatError', 'atomic_open', 'atomic_write_bytes', 'atomic_write_text',
    'encode_ply', 'finite_subset', 'format_size', 'load_result', 'poses_document', 'read_ply',
    'read_poses_json', 'safe_output_path', 'save_result', 'write_ply', 'write_poses_json',
]
