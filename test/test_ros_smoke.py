# Copyright 2026 The AetherScan ROS Authors
# SPDX-License-Identifier: Apache-2.0
"""
Prove the ROS 2 environment is real: messages and a service cross between two processes.

Two separate Python processes (test/ros_helpers) exchange sensor_msgs/Image,
sensor_msgs/PointCloud2 and tf2_msgs/TFMessage on /tf, a late joiner receives /tf_static
(transient local), and a std_srvs/Trigger call crosses processes. DDS stays on loopback in this
run's own ROS_DOMAIN_ID (conftest.py). Also checks that the tf2_msgs built by make setup carry
the upstream RIHS01 type hashes.
"""

import json
import os
from pathlib import Path
import signal
import subprocess
import sys
import threading
import time

import pytest

HELPERS = Path(__file__).resolve().parent / 'ros_helpers'
# Upstream RIHS01 hashes (identical on Jazzy and Kilted; see ../shared/ros_on_pip/NOTES.md).
UPSTREAM_HASHES = {
    'tf2_msgs/msg/TFMessage':
        'RIHS01_e369d0f05a23ae52508854b66f6aa0437f3449d652e8cbf22d5abe85d020f087',
    'tf2_msgs/msg/TF2Error':
        'RIHS01_db2485e7d6a0ec75bf087e058ee45df682acc3a621ca7780503d10aac141809a',
}
# Only the first and last 8 hex digits of these are on record.
UPSTREAM_HASH_ENDS = {
    'tf2_msgs/srv/FrameGraph': ('0d1fbc62', '50fe8067'),
    'tf2_msgs/action/LookupTransform': ('0b8adf6b', '97a82c5d'),
}

pytestmark = pytest.mark.ros


def _env():
    env = dict(os.environ)
    env['PYTHONPATH'] = str(HELPERS) + os.pathsep + env.get('PYTHONPATH', '')
    env['PYTHONUNBUFFERED'] = '1'
    return env


class _Output:
    """Collect a process's stdout lines in a thread, so waits never block on a read."""

    def __init__(self, proc):
        self.lines = []
        self._thread = threading.Thread(target=self._pump, args=(proc.stdout,), daemon=True)
        self._thread.start()

    def _pump(self, stream):
        for line in stream:
            self.lines.append(line.rstrip('\n'))

    def wait_for(self, proc, text, timeout):
        """Return True once a line equals ``text``; False at the deadline or when proc exits."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in self.lines:
                return True
            if proc.poll() is not None:
                self._thread.join(timeout=2)
                return text in self.lines
            time.sleep(0.05)
        return False

    def text(self):
        """Return everything read so far."""
        return '\n'.join(self.lines)


def _stop(proc):
    """Stop ``proc``: SIGINT, then SIGKILL after 5 s."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


def _type_description_files():
    """Yield the installed ``share/tf2_msgs/**/*.json`` type descriptions (venv or ROS prefix)."""
    prefixes = [p for p in os.environ.get('AMENT_PREFIX_PATH', '').split(os.pathsep) if p]
    prefixes.append(sys.prefix)
    for prefix in prefixes:
        share = Path(prefix) / 'share' / 'tf2_msgs'
        if share.is_dir():
            yield from sorted(share.glob('*/*.json'))
            return


def test_tf2_msgs_type_hashes_match_upstream():
    """The installed tf2_msgs type descriptions hash to the upstream RIHS01 values."""
    files = list(_type_description_files())
    assert files, f'no share/tf2_msgs/*/*.json under {sys.prefix} or AMENT_PREFIX_PATH'
    hashes = {}
    for path in files:
        for entry in json.loads(path.read_text())['type_hashes']:
            hashes[entry['type_name']] = entry['hash_string']
    for name, expected in UPSTREAM_HASHES.items():
        assert hashes.get(name) == expected, f'{name}: {hashes.get(name)} != upstream {expected}'
    for name, (head, tail) in UPSTREAM_HASH_ENDS.items():
        got = hashes.get(name, '')
        assert got.startswith('RIHS01_' + head) and got.endswith(tail), \
            f'{name}: {got} is not upstream RIHS01_{head}...{tail}'


def test_messages_and_service_cross_processes():
    """Image, PointCloud2, /tf, late-joined /tf_static and Trigger work between 2 processes."""
    env = _env()
    publisher = subprocess.Popen(
        [sys.executable, str(HELPERS / 'smoke_publisher.py'), '--lifetime', '90'],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    subscriber = None
    try:
        pub_out = _Output(publisher)
        assert pub_out.wait_for(publisher, 'READY', timeout=30), \
            f'publisher process not ready within 30 s (exit {publisher.poll()}); output:\n' \
            + pub_out.text()
        # The static transform is already sent: the subscriber below joins late.
        time.sleep(0.5)
        subscriber = subprocess.Popen(
            [sys.executable, str(HELPERS / 'smoke_subscriber.py'), '--count', '3',
             '--timeout', '40'],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        try:
            sub_out, sub_err = subscriber.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            subscriber.kill()
            sub_out, sub_err = subscriber.communicate()
            pytest.fail(f'subscriber process hung past 60 s; stderr:\n{sub_err}')
        lines = [line for line in sub_out.splitlines() if line.startswith('{')]
        assert lines, (f'subscriber printed no report (exit {subscriber.returncode}); '
                       f'stdout:\n{sub_out}\nstderr:\n{sub_err}')
        report = json.loads(lines[-1])
        detail = (f'report: {json.dumps(report, indent=1)}\nsubscriber stderr:\n{sub_err}\n'
                  f'publisher output:\n{pub_out.text()}\n'
                  f'ROS_DOMAIN_ID={env.get("ROS_DOMAIN_ID")}')
        assert not report['errors'], detail
        assert report['image'] >= 3 and report['points'] >= 3 and report['tf'] >= 3, detail
        assert ['smoke_camera', 'smoke_camera_optical', 0.25] in report['tf_static'], \
            'late joiner did not get the transient-local /tf_static message\n' + detail
        trigger = report['trigger']
        assert trigger and trigger['success'], detail
        assert f'by pid {publisher.pid}' in trigger['message'], detail
        assert report['pid'] != publisher.pid
        # What the publisher process announced on the wire for /tf is the upstream type.
        assert report['type_hashes'].get('/tf') == UPSTREAM_HASHES['tf2_msgs/msg/TFMessage'], \
            detail
        assert report['ok'], detail
    finally:
        if subscriber is not None and subscriber.poll() is None:
            subscriber.kill()
            subscriber.wait(timeout=5)
        _stop(publisher)
