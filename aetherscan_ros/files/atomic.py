# Copyright 2026 The AetherScan ROS Authors
# SPDX-License-Identifier: Apache-2.0
"""
Atomic file and directory writes, and the output-directory guard.

Every file is written atomically: to a temporary file in the same directory, flushed and
fsync'ed, then renamed over the target with :func:`os.replace`, so a reader (or a crash, or
Ctrl-C) never sees half a file. :func:`safe_output_path` keeps caller-chosen names (the node's
``~/save`` service) inside an output directory.
"""

from contextlib import contextmanager
import os
from pathlib import Path
import secrets
import sys
from typing import Callable, Iterator, Union

PathLike = Union[str, os.PathLike]


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


__all__ = ['PathLike', 'atomic_open', 'atomic_write_bytes', 'atomic_write_text',
           'safe_output_path', 'save_directory_atomically']
