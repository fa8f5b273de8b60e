# Copyright 2026 The AetherScan ROS Authors
# SPDX-License-Identifier: Apache-2.0
"""The MapAnything part of ``bench/gpu_check.py`` in its no-GPU mode, and the bench labels."""

import json

import numpy as np
import pytest

from bench import bench_mapanything, gpu_check


def test_gpu_check_mapanything_without_a_gpu(tmp_path, capsys):
    out = tmp_path / 'gpu_check.json'
    status = gpu_check.main(['--cpu', '--model', 'mapanything', '--preset', 'tiny', '--views',
                             '2', '--ma-size', '70', '--repeats', '1', '--json', str(out)])
    lines = capsys.readouterr().out.strip().splitlines()
    assert status == 0, '\n'.join(lines)
    assert lines[-1] == ('gpu_check: NO GPU (--cpu given): GPU timings and CUDA parity skipped; '
                         'parity ok (6 checks) on the CPU in float32 vs float64'), lines[-1]
    result = json.loads(out.read_text())
    assert result['parity'] == [] and result['cost'] == []  # no Fast3R part was asked for
    rows = result['mapanything']['parity']
    assert [r['output'] for r in rows] == list(gpu_check.MA_KEYS)
    for row in rows:
        assert row['ok'] and row['max_rel_error'] < 1e-4 and row['dtype'] == 'float32'
        assert row['cpu_f64_vs_upstream_f64'] < 1e-9  # the fp64 reference is upstream's
    (cost,) = result['mapanything']['cost']
    assert cost['views'] == 2 and cost['size'] == '70x56' and cost['finite']
    assert cost['median_s'] > 0 and cost['weights_gb'] > 0


def test_gpu_check_fails_on_a_mapanything_parity_error(monkeypatch, capsys):
    row = {'device': 'cpu', 'dtype': 'float32', 'output': 'pts3d', 'max_rel_error': 3e-4,
           'tolerance': 1e-4, 'ok': False}
    monkeypatch.setattr(gpu_check, 'ma_parity', lambda device, dtypes: [row])
    assert gpu_check.main(['--cpu', '--model', 'mapanything', '--json', '']) == 1
    text = capsys.readouterr().out
    assert 'FAIL' in text and 'parity FAILED: 1 check(s) (1 checks)' in text
    # [V, 3] translations compare as vectors: a zero component does not blow the error up
    trans = np.array([[1.0, 0.0, 0.0]])
    assert gpu_check.relative_error(trans + [[0.0, 0.01, 0.0]], trans) == pytest.approx(0.01)


def test_bench_rows_label_the_recorded_upstream_figures():
    """The upstream figures come from SPEC §14, not from this run: every such row says so."""
    doc = ' '.join(bench_mapanything.__doc__.split())
    assert 'recorded upstream, SPEC §14' in doc
    res = {'first_s': 50.0, 'times': [42.0, 38.0], 'build_s': 20.0, 'threads': 2,
           'device': 'cpu', 'dtype': 'float32', 'loadavg': 1.0, 'parameters': 1228491222,
           'parts_s': {'encoder': 20.0}, 'peak_rss_gb': 5.0}
    spec = {'preset': 'giant', 'views': 2, 'h': 392, 'w': 518}
    first, warm, memory = bench_mapanything.rows_for(spec, res)
    for row in (first, warm, memory):
        assert row['baseline'].endswith('recorded upstream, SPEC §14 (not this run)')
        assert row['group'] == 'mapanything' and row['size'] == '2 views 518x392'
    assert first['baseline'].startswith('44.7 s') and first['ratio'] == round(44.7 / 50.0, 2)
    assert warm['median_s'] == 40.0 and warm['ratio'] == round(40.1 / 40.0, 2)
    assert memory['baseline'].startswith('5.65 GB') and memory['throughput'] == 5.0
    assert '1,228,491,222 params' in warm['what']
    small = bench_mapanything.rows_for({**spec, 'preset': 'tiny'}, res)
    assert all(r['baseline'] is None and r['ratio'] is None for r in small)
