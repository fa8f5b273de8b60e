# Copyright 2026 The AetherScan ROS Authors
# SPDX-License-Identifier: Apache-2.0
"""
Shutdown under load, across real processes (issue 12).

The node's real ``main()`` gets SIGINT/SIGTERM after a classical reconstruction (pycolmap's
glog used to take SIGTERM over), during one (a terminal's Ctrl-C plus ``ros2 launch``'s
SIGINT), during a native call that cannot be cancelled (it must be waited for, not abandoned)
and during ``~/save`` (the save finishes; the executor stays free meanwhile). Every run must
exit 0 with no crash dump. ``bench/bench_signals.py`` repeats the classical runs 20 times each.
"""

import os
from pathlib import Path
import signal
import sys
import threading
import time

import pytest

HELPERS = Path(__file__).resolve().parent / 'robust_helpers'
sys.path.insert(0, str(HELPERS))

import malformed  # noqa: E402,I100 - test/robust_helpers is put on sys.path just above
from rig import NodeRig  # noqa: E402

from bench.bench_signals import crash_lines, one_run, write_scene  # noqa: E402,I100

TOPIC = '/shutdown_cam/image_raw'


@pytest.fixture(scope='module')
def scene_dir(tmp_path_factory):
    return write_scene(tmp_path_factory.mktemp('scene'))


def test_crash_markers_are_recognised():
    """The crash check would see what the review saw (glog dump, abort, traceback)."""
    log = ('*** Aborted at 1764000000 (unix time) try "date -d @1764000000"\n'
           '*** SIGTERM received by PID 123 (TID 0x7f) from PID 1; stack trace: ***\n'
           '    @     0x7f709724524a (/usr/lib/x86_64-linux-gnu/libc.so.6+0x27249)\n'
           'terminate called without an active exception\n'
           "[ERROR] Failed to publish: publisher's context is invalid\n"
           '[INFO] [aetherscan_node]: shutting down (SIGTERM)\n')
    assert len(crash_lines(log)) == 5


@pytest.mark.slow
def test_sigterm_after_a_classical_reconstruction_exits_cleanly(ros, tmp_path, scene_dir):
    """The SIGTERM handler of glog (installed by importing pycolmap) no longer takes over."""
    out = one_run(tmp_path, scene_dir, dict(os.environ), signal.SIGTERM, 0.5,
                  after_complete=True)
    assert out['code'] == 0 and not out['crash'], (out['code'], out['crash'], out['log'])
    assert out['seconds'] < 10.0
    assert 'shutting down (SIGTERM)' in out['log']


@pytest.mark.slow
def test_double_sigint_during_a_classical_reconstruction_exits_cleanly(ros, tmp_path,
                                                                       scene_dir):
    """Ctrl-C in a terminal + launch's SIGINT while COLMAP runs: exit 0, no dump."""
    out = one_run(tmp_path, scene_dir, dict(os.environ), signal.SIGINT, 0.8, double=True)
    assert out['stage'] != 'complete', 'the signal came too late to test anything'
    assert out['code'] == 0 and not out['crash'], (out['code'], out['crash'], out['log'])
    assert out['seconds'] < 10.0


def _slow_node(rig, tmp_path, *extra):
    from aetherscan_ros.demo.run_demo import start_process
    args = [str(HELPERS / 'slow_backend_node.py'), *extra, '--', '--ros-args',
            '-p', f"image_topics:=['{TOPIC}']", '-p', 'min_views:=2',
            '-p', 'keyframe_min_interval:=0.0', '-p', 'keyframe_min_change:=0.0',
            '-p', 'diagnostics_period:=0.2', '-p', f"output_dir:='{tmp_path / 'out'}'"]
    proc = start_process(args, rig.log_path, dict(os.environ))
    rig.procs.append(proc)
    return proc


def _feed_two_images(rig):
    from rclpy.qos import QoSProfile
    from sensor_msgs.msg import Image
    mon = rig.monitor
    pub = mon.node.create_publisher(Image, TOPIC, QoSProfile(depth=10))
    assert mon.wait_for_node(60.0), rig.log()
    assert mon.wait_event('backend_selected', 30.0), rig.log()
    assert mon.spin_until(lambda: pub.get_subscription_count() > 0, 30.0)
    for i in range(2):
        pub.publish(malformed.good_image(2_000_000_000 + i * 10 ** 8, seed=i))


@pytest.mark.slow
def test_a_native_call_in_progress_is_waited_for(ros, tmp_path):
    """A backend call with no progress step is waited for (it was abandoned after 2 s)."""
    rig = NodeRig(tmp_path)
    try:
        proc = _slow_node(rig, tmp_path, '--busy', '0', '--native', '5')
        _feed_two_images(rig)
        assert rig.monitor.wait_event('progress', 30.0, stage='native'), rig.log()
        started = time.monotonic()
        seconds = rig.signal(proc, signal.SIGTERM, timeout=30.0)
        assert seconds is not None, rig.log()
        assert proc.returncode == 0, (proc.returncode, rig.log())
        # the native call had ~5 s to go when the signal came: shutdown waited for it
        assert time.monotonic() - started > 3.0, f'exited after {seconds:.1f} s: abandoned?'
        assert 'waiting for the running reconstruction' in rig.log()
        assert not crash_lines(rig.log()), rig.log()
    finally:
        rig.close()


@pytest.mark.slow
def test_save_runs_off_the_executor_and_a_signal_waits_for_it(ros, tmp_path):
    """~/save no longer blocks the executor; SIGTERM mid-save leaves a complete directory."""
    rig = NodeRig(tmp_path)
    mon = rig.monitor
    try:
        proc = _slow_node(rig, tmp_path, '--busy', '0', '--slow-save', '3')
        _feed_two_images(rig)
        assert mon.wait_event('reconstruction_complete', 30.0), rig.log()
        answer = {}
        saver = threading.Thread(target=lambda: answer.update(save=_call(rig, 'save')))
        # the monitor's executor is not thread-safe: the save call runs from a second node
        saver.start()
        time.sleep(1.0)  # the save is now sleeping before its preview
        t0 = time.monotonic()
        ok, message = mon.call('reset', timeout=10.0)
        reset_s = time.monotonic() - t0
        assert ok, message
        assert reset_s < 1.5, f'~/reset waited {reset_s:.1f} s behind ~/save'
        seconds = rig.signal(proc, signal.SIGTERM, timeout=30.0)
        saver.join(30.0)
        assert seconds is not None and proc.returncode == 0, (proc.returncode, rig.log())
        ok, message = answer.get('save', (False, 'no answer'))  # the caller got its answer
        assert ok and message.endswith('reconstruction_0001'), message
        out = tmp_path / 'out'
        done = out / 'reconstruction_0001'
        assert {p.name for p in done.iterdir()} >= {'cloud.ply', 'poses.json', 'preview.png'}
        assert [p.name for p in out.iterdir()] == ['reconstruction_0001']  # no temp dirs
        assert not crash_lines(rig.log()), rig.log()
    finally:
        rig.close()


def _call(rig, service):
    """Call ``~/<service>`` from a node of its own (its own executor, on this thread)."""
    import rclpy
    from rclpy.executors import SingleThreadedExecutor
    from std_srvs.srv import Trigger
    node = rclpy.create_node('shutdown_test_caller')
    try:
        client = node.create_client(Trigger, f'/aetherscan_node/{service}')
        executor = SingleThreadedExecutor()
        executor.add_node(node)
        if not client.wait_for_service(timeout_sec=10.0):
            return False, 'no service'
        future = client.call_async(Trigger.Request())
        executor.spin_until_future_complete(future, timeout_sec=30.0)
        result = future.result()
        return (result.success, result.message) if result else (False, 'no answer')
    finally:
        node.destroy_node()
