# Copyright 2026 The AetherScan ROS Authors
# SPDX-License-Identifier: Apache-2.0
"""``bench/gpu_check.py`` in its no-GPU mode (so it cannot rot) and the Fast3R bench labels."""

import json
import os
from pathlib import Path
import subprocess
import sys

import numpy as np
import pytest

from bench import bench_fast3r, gpu_check

REPO = Path(__file__).resolve().parents[1]


def test_gpu_check_without_a_gpu_runs_parity_and_says_so(tmp_path):
    """As a user runs it (``python -m bench.gpu_check``), forced into the no-GPU mode."""
    out = tmp_path / 'gpu_check.json'
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.run(
        [sys.executable, '-m', 'bench.gpu_check', '--cpu', '--preset', 'tiny', '--views', '2',
         '--size', '64', '--repeats', '1', '--json', str(out)],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert lines[-1].startswith('gpu_check: NO GPU (--cpu given): GPU timings and CUDA parity '
                                'skipped; parity ok (4 checks) on the CPU'), lines[-1]
    assert sum('NO GPU' in line for line in lines) == 1
    result = json.loads(out.read_text())
    assert [r['output'] for r in result['parity']] == list(gpu_check.KEYS)
    for row in result['parity']:
        assert row['ok'] and row['max_rel_error'] < 1e-4 and row['dtype'] == 'float32'
        assert row['cpu_f64_vs_upstream_f64'] < 1e-9  # the fp64 reference is upstream's
    (cost,) = result['cost']
    assert cost['views'] == 2 and cost['size'] == '64x48' and cost['finite']
    assert cost['median_s'] > 0 and cost['weights_gb'] > 0


def test_relative_error_and_failing_parity_exit_status(monkeypatch, capsys):
    ref = np.array([[[1.0, 0.0, 0.0], [0.0, 2.0, 0.0]]])
    assert gpu_check.relative_error(ref * 1.01, ref) == pytest.approx(0.01)
    assert gpu_check.relative_error(np.array([np.nan, 1.0]), np.ones(2)) == float('inf')
    row = {'device': 'cpu', 'dtype': 'float32', 'output': 'conf', 'max_rel_error': 2e-4,
           'tolerance': 1e-4, 'ok': False}
    monkeypatch.setattr(gpu_check, 'parity', lambda device, dtypes: [row])
    assert gpu_check.main(['--cpu', '--json', '']) == 1
    text = capsys.readouterr().out
    assert 'FAIL' in text and 'parity FAILED: 1 check(s) (1 checks)' in text


def test_fast3r_bench_labels_recorded_baselines():
    """The upstream figures come from SPEC §13, not from this run: every row says so."""
    assert 'recorded elsewhere, not measured in this run' in ' '.join(
        bench_fast3r.__doc__.split())
    res = {'times': [20.0, 22.0], 'build_s': 3.0, 'threads': 2, 'dtype': 'float32',
           'device': 'cpu', 'gemm_gflops': [180.0, 170.0], 'loadavg': 0.5, 'parts_s': {},
           'peak_rss_gb': 3.5}
    spec = {'views': 2, 'h': 384, 'w': 512}
    timing, memory = bench_fast3r.rows_for(spec, res)
    for row in (timing, memory):
        assert row['baseline'].endswith('upstream, recorded elsewhere (not this run)')
    assert timing['baseline'].startswith('20.5 s') and timing['ratio'] == round(20.5 / 21.0, 2)
    assert 'recorded elsewhere (not this run)' in timing['notes']
    assert memory['baseline'].startswith('4.0 GB')
    small = bench_fast3r.rows_for({'views': 2, 'h': 160, 'w': 224}, res)
    assert all(r['baseline'] is None and r['ratio'] is None for r in small)
