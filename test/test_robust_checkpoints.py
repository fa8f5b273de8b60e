# Copyright 2026 The AetherScan ROS Authors
# SPDX-License-Identifier: Apache-2.0
"""
Issue 7, checkpoints and security: bad weights never crash, never execute code.

A missing, corrupt, truncated, mismatched or malicious Fast3R checkpoint makes ``backend auto``
fall back to the classical backend with the reason (unit level and through a running node);
``backend fast3r`` reports the reason and the node stays up. A pickle that would run code on
load is refused without running it, and no module of the package loads weights any other way
than safetensors or ``torch.load(weights_only=True)``.
"""

import ast
import json
import os
from pathlib import Path
import re
import shutil
import sys

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent / 'robust_helpers'))
from rig import NodeRig  # noqa: E402,I100 - test/robust_helpers is put on sys.path just above

PACKAGE = Path(__file__).resolve().parents[1] / 'aetherscan_ros'


class _Payload:
    """Unpickling this object calls ``open(path, 'w')``: it would create the marker file."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, 'w'))


@pytest.fixture(scope='module')
def good_checkpoint(tmp_path_factory):
    from aetherscan_ros.models.fast3r import write_random_checkpoint
    return write_random_checkpoint(tmp_path_factory.mktemp('ckpt') / 'good', preset='tiny')


def _variant(good, tmp_path, name):
    target = tmp_path / name
    shutil.copytree(good, target)
    return target


def _make_bad(kind, good, tmp_path):
    """Return ``(checkpoint dir, text the reason must contain)`` for one kind of bad weights."""
    if kind == 'missing':
        return tmp_path / 'does_not_exist', 'no such directory'
    d = _variant(good, tmp_path, kind)
    weights = d / 'model.safetensors'
    if kind == 'no_weights':
        weights.unlink()
        return d, 'lacks model.safetensors'
    if kind == 'corrupt':
        weights.write_bytes(os.urandom(4096))
        return d, 'not a readable safetensors file'
    if kind == 'truncated':
        weights.write_bytes(weights.read_bytes()[:weights.stat().st_size // 2])
        return d, 'not a readable safetensors file'
    if kind == 'bad_config':
        (d / 'config.json').write_text('{"encoder_args": [')
        return d, 'config.json'
    if kind == 'mismatched':  # weights of a 4-block decoder, config asks for 6 blocks
        config = json.loads((d / 'config.json').read_text())
        config['decoder_args']['depth'] = 6
        (d / 'config.json').write_text(json.dumps(config))
        return d, 'does not match the model'
    raise AssertionError(kind)


@pytest.mark.parametrize('kind', ['missing', 'no_weights', 'corrupt', 'truncated',
                                  'bad_config', 'mismatched'])
def test_bad_checkpoint_auto_falls_back_to_classical(kind, good_checkpoint, tmp_path):
    from aetherscan_ros.backends import BackendUnavailable, create_backend
    path, reason = _make_bad(kind, good_checkpoint, tmp_path)
    backend, why = create_backend('auto', model=str(path), device='cpu')
    assert backend.name == 'classical'
    assert why.startswith('Fast3R unavailable') and reason in why, why
    assert 'using the classical backend' in why or 'using classical' in why
    with pytest.raises(BackendUnavailable, match=re.escape(reason)):
        create_backend('fast3r', model=str(path), device='cpu')


def test_malicious_pickle_checkpoint_is_refused_without_running_it(good_checkpoint, tmp_path):
    """A model.pth whose unpickling would call open(): refused, marker never created."""
    import torch

    from aetherscan_ros.backends import create_backend
    from aetherscan_ros.models.fast3r.weights import CheckpointError, read_state_dict
    marker = tmp_path / 'pwned'
    d = _variant(good_checkpoint, tmp_path, 'evil')
    (d / 'model.safetensors').unlink()
    torch.save({'encoder.patch_embed.proj.weight': _Payload(marker)}, d / 'model.pth')
    with pytest.raises(CheckpointError, match='weights-only'):
        read_state_dict(d / 'model.pth')
    backend, why = create_backend('auto', model=str(d), device='cpu')
    assert backend.name == 'classical' and 'weights-only' in why, why
    assert not marker.exists(), 'the pickle payload ran'
    # control: an ordinary unpickle of the same file would have run it
    import pickle
    import zipfile
    with zipfile.ZipFile(d / 'model.pth') as archive:
        data = archive.read(next(n for n in archive.namelist() if n.endswith('data.pkl')))
    pickle.loads(data)
    assert marker.exists()


def _dotted(node):
    """Return ``'a.b.c'`` for an attribute chain (``''`` for anything else)."""
    if isinstance(node, ast.Attribute):
        inner = _dotted(node.value)
        return f'{inner}.{node.attr}' if inner else ''
    return node.id if isinstance(node, ast.Name) else ''


def test_package_loads_weights_only_safely():
    """No module unpickles: torch.load always weights_only=True; no pickle/eval/exec calls."""
    unsafe = {'pickle.load', 'pickle.loads', 'dill.load', 'joblib.load', 'eval', 'exec',
              'cloudpickle.load', 'torch.jit.load', 'marshal.loads'}
    offenders, torch_loads = [], 0
    for path in sorted(PACKAGE.rglob('*.py')):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if not isinstance(node, ast.Call):
                continue
            name = _dotted(node.func)
            keywords = {k.arg: getattr(k.value, 'value', None) for k in node.keywords}
            where = f'{path.relative_to(PACKAGE)}:{node.lineno} {name}'
            if name == 'torch.load':
                torch_loads += 1
                if keywords.get('weights_only') is not True:
                    offenders.append(where + ' without weights_only=True')
            elif name in unsafe:
                offenders.append(where)
            elif name.endswith('load') and keywords.get('allow_pickle') is True:
                offenders.append(where + ' allow_pickle=True')
    assert not offenders, offenders
    assert torch_loads >= 1  # the weights loader was found and checked


@pytest.mark.ros
def test_node_auto_with_corrupt_checkpoint_runs_classical(ros, good_checkpoint, tmp_path):
    """With backend auto, a truncated checkpoint: the event names the reason, classical."""
    path, reason = _make_bad('truncated', good_checkpoint, tmp_path)
    rig = NodeRig(tmp_path)
    try:
        proc = rig.node(backend='auto', model=str(path), device='cpu',
                        image_topics=['/ckpt_cam/image_raw'], no_frames_warning=0.0)
        assert rig.monitor.wait_for_node(60.0), rig.log()
        selected = rig.monitor.wait_event('backend_selected', 120.0)
        assert selected is not None, rig.log()
        assert selected['backend'] == 'classical'
        assert reason in selected['reason'] and 'using the classical backend' in \
            selected['reason']
        assert rig.wait_log('backend classical on cpu: Fast3R unavailable')
        assert proc.poll() is None
    finally:
        rig.close()


@pytest.mark.ros
def test_node_fast3r_with_missing_checkpoint_reports_and_stays_up(ros, tmp_path):
    """With backend fast3r and no weights: error event, diagnostics ERROR, node up."""
    rig = NodeRig(tmp_path)
    try:
        proc = rig.node(backend='fast3r', model=str(tmp_path / 'nothing_here'), device='cpu',
                        image_topics=['/ckpt_cam/image_raw'], no_frames_warning=0.0,
                        diagnostics_period=0.2)
        assert rig.monitor.wait_for_node(60.0), rig.log()
        error = rig.monitor.wait_event('error', 120.0, stage='backend')
        assert error is not None and 'no such directory' in error['message'], rig.log()
        assert rig.monitor.spin_until(
            lambda: rig.monitor.diagnostics.get('_level') == 2, 10.0), rig.monitor.diagnostics
        ok, message = rig.monitor.call('reconstruct')
        assert not ok and 'backend not ready: fast3r backend unavailable' in message
        assert proc.poll() is None
    finally:
        rig.close()
