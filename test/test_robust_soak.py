# Copyright 2026 The AetherScan ROS Authors
# SPDX-License-Identifier: Apache-2.0
"""
Issue 7, load: a short run of ``bench/bench_soak.py`` (4 cameras x 30 Hz, classical backend).

Not a timing test: it checks that the soak pipeline works end to end and guards against the
silent-drop regression the benchmark found (the node receiving a third of the frames), with a
generous threshold for a loaded machine.
"""

import pytest

from bench import bench_soak, run_all

pytestmark = [pytest.mark.ros, pytest.mark.slow]


def test_short_soak_receives_reconstructs_and_leaks_nothing():
    result = bench_soak.soak(8.0, warmup_timeout=90.0)
    sent = sum(result['cameras']['sent'])
    received = int(result['diag_end']['frames_received'])
    assert sent > 0 and received <= sent
    assert received >= 0.6 * sent, f'the node received only {received} of {sent} frames'
    assert result['completed'] >= 1, result
    assert int(result['diag_end']['callback_errors']) == 0
    assert int(result['diag_end']['invalid_frames']) == 0
    start, end = result['start'], result['end']
    assert end['fds'] <= start['fds'] + 2, (start, end)
    assert end['threads'] <= start['threads'] + 2, (start, end)
    assert result['exit_code'] == 0
    rows = bench_soak.rows_from(result)
    assert [set(r) for r in rows] == [set(run_all.ROW_KEYS)] * len(rows)
    assert rows[0]['ratio'] == pytest.approx(received / sent)
    assert 'soak' in run_all.discover(['soak'])[0]
