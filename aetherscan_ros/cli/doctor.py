# Copyright 2026 The AetherScan ROS Authors
# SPDX-License-Identifier: Apache-2.0
"""``aetherscan doctor``: what this machine has, the fix for what it lacks. Never downloads."""

import os
from pathlib import Path
import sys
from typing import List, Tuple

from aetherscan_ros.cli.common import EXIT_FAILED, EXIT_OK


def _check(status: str, what: str, fix: str = '') -> str:
    text = f'  [{status:<4}] {what}'
    return text + (f'\n           fix: {fix}' if fix else '')


def doctor_report(model: str = '', device: str = 'auto') -> Tuple[List[str], bool]:
    """Return the doctor's lines and whether some backend can run here. Never downloads."""
    os.environ['HF_HUB_OFFLINE'] = '1'  # before anything imports huggingface_hub
    lines = []
    ok_py = (3, 10) <= sys.version_info[:2] <= (3, 13)
    lines.append(_check('ok' if ok_py else 'warn',
                        f'Python {sys.version.split()[0]} ({sys.executable})',
                        '' if ok_py else 'use Python 3.10-3.13 (the ROS 2 wheels exist for '
                        'those only), then `make setup`'))
    distro = os.environ.get('ROS_DISTRO', '')
    ros_errors = []
    for module, what in (('rclpy', 'rclpy'), ('tf2_msgs.msg', 'tf2_msgs'),
                         ('sensor_msgs.msg', 'sensor_msgs')):
        try:
            __import__(module)
        except Exception as exc:  # noqa: B902 - any import failure is a finding here
            ros_errors.append(f'{what}: {type(exc).__name__}: {exc}'.splitlines()[0])
    distro_text = f'ROS_DISTRO={distro}' if distro else 'ROS_DISTRO not set (ROS 2 from wheels?)'
    if ros_errors:
        lines.append(_check('miss', f'ROS 2: {distro_text}; cannot import ' +
                            '; '.join(ros_errors),
                            'source /opt/ros/<distro>/setup.bash before `make setup`, or run '
                            '`make setup` for the ROS 2 Jazzy wheels in .venv'))
    else:
        lines.append(_check('ok', f'ROS 2: {distro_text}; rclpy, tf2_msgs and sensor_msgs '
                            'import'))
    classical_ok = True
    try:
        import cv2
        from aetherscan_ros.backends.classical.sfm import import_pycolmap
        pycolmap = import_pycolmap()  # never import pycolmap directly: see import_pycolmap
        lines.append(_check('ok', f'classical backend: pycolmap {pycolmap.__version__}, '
                            f'OpenCV {cv2.__version__}'))
    except Exception as exc:  # noqa: B902
        classical_ok = False
        lines.append(_check('miss', f'classical backend: {type(exc).__name__}: {exc}',
                            '`make setup` (installs pycolmap and opencv-python-headless)'))
    torch_ok = False
    try:
        import torch
        torch_ok = True
        build = f'CUDA {torch.version.cuda}' if torch.version.cuda else 'CPU-only build'
        lines.append(_check('ok', f'torch {torch.__version__} ({build})'))
    except Exception as exc:  # noqa: B902
        lines.append(_check('miss', f'torch: cannot import ({type(exc).__name__}: {exc})',
                            '`make setup` installs torch 2.13.0 (CPU); for a GPU install the '
                            'CUDA build from pytorch.org first'))
    if torch_ok:
        lines.append(_cuda_line(torch, device))
    lines.append(_memory_line())
    lines.append(_cloud_line())
    from aetherscan_ros.backends import model_family
    family = model_family(model)
    ma_ok, ma_line = _mapanything_line(model if family == 'mapanything' else '')
    lines.append(ma_line)
    weights_ok, weights_line = _weights_line(model if family != 'mapanything' else '')
    lines.append(weights_line)
    if classical_ok:
        from aetherscan_ros.backends.licences import CLASSICAL
        lines.append(f'           classical licence: {CLASSICAL}')
    if torch_ok and ma_ok:
        pick = 'mapanything (torch works and its weights were found; checked on load)'
    elif torch_ok and weights_ok:
        pick = ('fast3r (torch works and the weights were found; they are checked on load; '
                'no MapAnything weights)')
    elif classical_ok:
        why = 'torch is missing' if not torch_ok else 'no MapAnything or Fast3R weights'
        pick = f'classical ({why})'
    else:
        pick = 'none: neither a learned backend nor the classical one can run'
    lines.append(f'  backend auto would pick: {pick}')
    return lines, (torch_ok and (weights_ok or ma_ok)) or classical_ok


def _cuda_line(torch, device: str) -> str:
    try:
        if not torch.cuda.is_available():
            fix = ('' if device != 'cuda' else 'install a CUDA build of torch and an NVIDIA '
                   'driver, or use --device cpu')
            return _check('--', 'CUDA: no CUDA device; Fast3R would run on the CPU in float32 '
                          '(slow)', fix)
        index = torch.cuda.current_device()
        name = torch.cuda.get_device_name(index)
        free, total = torch.cuda.mem_get_info(index)
        from aetherscan_ros.models.torch_device import native_bf16
        dtype = 'bfloat16' if native_bf16(torch.device('cuda', index)) else 'float16'
        return _check('ok', f'CUDA: {name}, {free / 2**30:.1f} GiB free of '
                      f'{total / 2**30:.1f} GiB; Fast3R would use {dtype}')
    except Exception as exc:  # noqa: B902
        return _check('warn', f'CUDA: query failed ({type(exc).__name__}: {exc})',
                      'check the NVIDIA driver (nvidia-smi)')


def _cloud_line() -> str:
    from aetherscan_ros import cloud
    from aetherscan_ros.core.process_env import hugepage_malloc_state
    malloc = hugepage_malloc_state()
    if cloud.PACKER == 'c':
        return _check('ok', f'cloud packer: C (aetherscan_ros.cloud._cloudpack); huge-page '
                      f'malloc {malloc}')
    return _check('warn', f'cloud packer: {cloud.PACKER}, 3-8x slower than the C one; '
                  f'huge-page malloc {malloc}',
                  'install a C compiler and the Python headers, then `make setup` (or '
                  '`colcon build`) again')


def _memory_line() -> str:
    try:
        import psutil
        mem = psutil.virtual_memory()
        return _check('ok', f'host: {os.cpu_count()} CPU cores, {mem.available / 2**30:.1f} GiB '
                      f'of {mem.total / 2**30:.1f} GiB memory available')
    except Exception as exc:  # noqa: B902
        return _check('--', f'host: {os.cpu_count()} CPU cores (memory unknown: {exc})')


def _weights_line(model: str) -> Tuple[bool, str]:
    try:
        from aetherscan_ros.backends.base import BackendUnavailable
        from aetherscan_ros.models.fast3r.weights import DEFAULT_REPO_ID, locate_checkpoint
    except Exception as exc:  # noqa: B902
        return False, _check('miss', f'Fast3R weights: cannot check ({type(exc).__name__}: '
                             f'{exc})', 'this build lacks the Fast3R backend; reinstall the '
                             'package (`make setup`)')
    target = model or DEFAULT_REPO_ID
    try:
        path = locate_checkpoint(target)
    except BackendUnavailable as exc:
        return False, _check('miss', f'Fast3R weights for {target!r}: {exc}',
                             'see above; until then `auto` uses the classical backend')
    except Exception as exc:  # noqa: B902
        return False, _check('warn', f'Fast3R weights for {target!r}: lookup failed '
                             f'({type(exc).__name__}: {exc})', 'pass --model DIR with '
                             'config.json + model.safetensors')
    note = ''
    try:
        from aetherscan_ros.models.fast3r.weights import RANDOM_MARK
        if _safetensors_metadata(Path(path) / 'model.safetensors').get(RANDOM_MARK) == 'true':
            note = ' -- RANDOM WEIGHTS: a test checkpoint, not a trained model'
    except (ImportError, OSError, ValueError):
        pass
    from aetherscan_ros.backends.licences import FAST3R, RANDOM
    return True, _check('ok' if not note else 'warn', f'Fast3R weights for {target!r}: {path}'
                        + note + f'; licence: {RANDOM if note else FAST3R}',
                        'pass --model with a trained checkpoint' if note else '')


def _mapanything_line(model: str) -> Tuple[bool, str]:
    """Return whether MapAnything weights are here, and the line (with their licence)."""
    from aetherscan_ros.backends.base import BackendUnavailable
    from aetherscan_ros.backends.mapanything_inputs import (
        checkpoint_licence, DEFAULT_REPO_ID, is_random_checkpoint, locate_checkpoint)
    target = model or DEFAULT_REPO_ID
    try:
        path = locate_checkpoint(target, local_files_only=True)
    except BackendUnavailable as exc:
        return False, _check('miss', f'MapAnything weights for {target!r}: {exc}',
                             'see above; until then `auto` tries Fast3R, then classical')
    except Exception as exc:  # noqa: B902
        return False, _check('warn', f'MapAnything weights for {target!r}: lookup failed '
                             f'({type(exc).__name__}: {exc})', 'pass --model with a MapAnything '
                             'checkpoint directory (config.json + model.safetensors)')
    random = is_random_checkpoint(path)
    note = ' -- RANDOM WEIGHTS: a test checkpoint, not a trained model' if random else ''
    return True, _check('warn' if random else 'ok', f'MapAnything weights for {target!r}: '
                        f'{path}{note}; licence: {checkpoint_licence(path, target)}',
                        'pass --model with a trained checkpoint' if random else '')


def _safetensors_metadata(path: Path) -> dict:
    """Read the ``__metadata__`` of a safetensors file from its header (no tensor data)."""
    import json
    import struct
    with open(path, 'rb') as handle:
        (length,) = struct.unpack('<Q', handle.read(8))
        if length > 100_000_000:
            raise ValueError(f'{path}: implausible safetensors header length {length}')
        header = json.loads(handle.read(length).decode('utf-8'))
    meta = header.get('__metadata__') or {}
    return meta if isinstance(meta, dict) else {}


def cmd_doctor(args) -> int:
    """Run ``aetherscan doctor``."""
    lines, usable = doctor_report(args.model or '', args.device)
    print('aetherscan doctor (checks only; never downloads)')
    print('\n'.join(lines))
    return EXIT_OK if usable else EXIT_FAILED
