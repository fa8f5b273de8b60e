# Copyright 2026 The AetherScan ROS Authors
# SPDX-License-Identifier: Apache-2.0
"""Tests of the benchmark runner and of cross-process chunk delivery (bench/bench_transport)."""

import json
import sys
import types

import pytest

from bench import bench_transport, run_all


def _fake(name, rows=None, error=None):
    module = types.ModuleType(f'bench.{name}')

    def run(quick):
        if error:
            raise error
        return rows
    module.run = run
    sys.modules[f'bench.{name}'] = module
    return name


def test_runner_continues_after_a_failure_and_exits_nonzero(tmp_path, monkeypatch, capsys):
    ok = _fake('bench_fake_ok', [{'group': 'g', 'what': 'thing', 'size': '10 pts',
                                  'median_s': 0.0025, 'throughput': '4 Mpt/s',
                                  'baseline': 'ref', 'ratio': 3.5, 'notes': 'n'}])
    bad = _fake('bench_fake_bad', error=RuntimeError('boom'))
    monkeypatch.setattr(run_all, 'discover', lambda only=None: [bad, ok])
    code = run_all.main(['--quick', '--out', str(tmp_path)])
    out = capsys.readouterr().out
    assert code == 1
    assert 'thing' in out and '2.50 ms' in out and '3.50x' in out and 'FAILED' in out
    payload = json.loads((tmp_path / 'bench.json').read_text())
    assert payload['quick'] is True and 'bench_fake_bad' in payload['failures']
    assert payload['machine']['cores'] and payload['machine']['python']
    assert [r['what'] for r in payload['rows']] == ['FAILED', 'thing']
    assert set(payload['rows'][1]) == set(run_all.ROW_KEYS)


def test_runner_all_ok_exit_zero(tmp_path, monkeypatch):
    ok = _fake('bench_fake_ok2', [{'what': 'x', 'median_s': 1.5}])
    monkeypatch.setattr(run_all, 'discover', lambda only=None: [ok])
    assert run_all.main(['--out', str(tmp_path)]) == 0
    rows = json.loads((tmp_path / 'bench.json').read_text())['rows']
    assert rows[0]['group'] == 'fake_ok2'  # defaults to the module name


def test_discover_finds_modules_and_rejects_unknown():
    names = run_all.discover()
    assert 'bench_cloud' in names and 'bench_transport' in names
    assert run_all.discover(['cloud']) == ['bench_cloud']
    with pytest.raises(SystemExit, match='unknown benchmark'):
        run_all.discover(['no_such_thing'])


def test_table_is_aligned():
    table = run_all.format_table([{'what': 'a', 'median_s': 2e-6}, {'what': 'longer name'}])
    lines = table.splitlines()
    assert len({line.index('size') if 'size' in line else None for line in lines[:1]}) == 1
    assert lines[2].index('2.0 us') == lines[0].index('median')


@pytest.mark.ros
def test_chunks_cross_process_reassemble_exactly():
    """A real publisher process and subscriber process on loopback (reliable, depth 100)."""
    result = bench_transport.run_pair(20_000, 3_000, 'reliable100', False,
                                      domain=200 + (hash('x') % 20), timeout_s=30.0)
    assert result['matched'] and result['publish_errors'] == 0
    assert result['t_complete'] is not None, result
    assert result['exact'] is True
    assert result['chunks_received'] == result['chunks_sent']
