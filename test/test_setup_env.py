# Copyright 2026 The AetherScan ROS Authors
# SPDX-License-Identifier: Apache-2.0
"""
``make setup`` (tools/setup_env.sh) is idempotent, and the tf2_msgs builder fails clearly.

The no-op test runs on the venv this pytest runs in (the one ``make setup`` made); it is skipped
for any other interpreter (e.g. ``colcon test`` on a real ROS 2).
"""

import os
from pathlib import Path
import subprocess
import sys
import time

import pytest

REPO = Path(__file__).resolve().parents[1]
VENV = Path(sys.prefix)
STAMP = VENV / '.aetherscan-setup-stamp'


def _snapshot(venv):
    """Return ``{path: (mtime_ns, size)}`` of the venv's bin/, site-packages entries and stamps."""
    entries = {}
    roots = [venv / 'bin', *venv.glob('lib/python3*/site-packages'), venv / 'share' / 'tf2_msgs']
    for root in roots:
        if root.is_dir():
            for path in root.iterdir():
                st = path.lstat()
                entries[str(path)] = (st.st_mtime_ns, st.st_size)
    for path in (STAMP, venv / 'share' / 'tf2_msgs' / '.aetherscan-build-stamp'):
        if path.exists():
            entries[str(path)] = (path.stat().st_mtime_ns, path.read_text())
    return entries


def _setup(env=None):
    start = time.monotonic()
    proc = subprocess.run(['bash', str(REPO / 'tools' / 'setup_env.sh'), str(VENV)],
                          capture_output=True, text=True, timeout=900, env=env)
    return proc, time.monotonic() - start


@pytest.mark.slow
def test_second_setup_is_a_noop():
    """A second tools/setup_env.sh run says "up to date" and modifies nothing in the venv."""
    if not STAMP.is_file():
        pytest.skip(f'{sys.prefix} was not made by tools/setup_env.sh')
    first, first_s = _setup()
    assert first.returncode == 0, f'first run failed:\n{first.stderr}'
    before = _snapshot(VENV)
    second, second_s = _setup()
    assert second.returncode == 0, f'second run failed:\n{second.stderr}'
    assert 'up to date' in second.stderr, second.stderr
    after = _snapshot(VENV)
    changed = sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))
    assert not changed, f'the second run changed: {changed[:20]}'
    tf2 = subprocess.run(['bash', str(REPO / 'tools' / 'build_tf2_msgs.sh'), '--venv', str(VENV)],
                         capture_output=True, text=True, timeout=600)
    assert tf2.returncode == 0 and 'up to date' in tf2.stderr, tf2.stderr
    print(f'setup_env.sh: first run {first_s:.2f} s, second (no-op) run {second_s:.2f} s')


def test_tf2_build_names_missing_tools(tmp_path):
    """Without cmake (and apt forbidden) the builder stops with an error naming what to install."""
    fake = tmp_path / 'venv'
    (fake / 'bin').mkdir(parents=True)
    (fake / 'bin' / 'python').symlink_to(sys.executable)
    env = dict(os.environ, CMAKE=str(tmp_path / 'no' / 'cmake'), AETHERSCAN_NO_APT='1')
    proc = subprocess.run(
        ['bash', str(REPO / 'tools' / 'build_tf2_msgs.sh'), '--venv', str(fake), '--force'],
        capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode != 0, proc.stderr
    assert 'missing: cmake' in proc.stderr, proc.stderr
    assert 'apt-get install cmake' in proc.stderr, proc.stderr
    assert not (fake / 'share').exists(), 'it went on to build after the error'


def test_tf2_build_rejects_bad_venv(tmp_path):
    """A venv path without a Python is named in the error."""
    proc = subprocess.run(
        ['bash', str(REPO / 'tools' / 'build_tf2_msgs.sh'), '--venv', str(tmp_path)],
        capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0
    assert str(tmp_path) in proc.stderr and 'make setup' in proc.stderr, proc.stderr


def test_run_tests_fails_when_nothing_is_collected(tmp_path):
    """tools/run_tests.sh turns pytest's "no tests collected" (exit 5) into a failure."""
    (tmp_path / 'test_nothing.py').write_text('"""No tests here."""\n', encoding='utf-8')
    proc = subprocess.run(
        ['bash', str(REPO / 'tools' / 'run_tests.sh'), sys.executable, str(tmp_path)],
        cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert 'collected no tests' in proc.stderr, proc.stderr
