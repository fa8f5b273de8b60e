# Copyright 2026 The AetherScan ROS Authors
# SPDX-License-Identifier: Apache-2.0
"""
Node defects from the outside review (issue 12), in process on the production executor.

QoS overrides of relative topics, timers under ``use_sim_time`` without ``/clock``, the
session id in chunk markers (a restarted node), and the Humble code paths (no
``rclpy.event_handler``, no post-set parameter callback) emulated on this rclpy.
"""

import subprocess
import sys
import textwrap
import threading

import numpy as np
import pytest

from aetherscan_ros.cloud import ChunkAssembler, ChunkInfo, ChunkStream

pytestmark = pytest.mark.ros


def no_backend():
    """Backend factory of these tests: they need none (the node reports it unavailable)."""
    raise RuntimeError('no backend in this test')


class Spun:
    """An AetherscanNode spun by a SingleThreadedExecutor on a thread, plus a helper node."""

    def __init__(self, namespace='', **values):
        import rclpy
        from rclpy.executors import SingleThreadedExecutor
        from rclpy.parameter import Parameter

        from aetherscan_ros.node import AetherscanNode
        base = {'auto_trigger': False, 'no_frames_warning': 0.0, 'use_camera_info': False}
        base.update(values)
        self.node = AetherscanNode(
            backend_factory=no_backend, namespace=namespace,
            parameter_overrides=[Parameter(k, value=v) for k, v in base.items()])
        self.helper = rclpy.create_node('node_fixes_helper')
        self.executor = SingleThreadedExecutor()
        self.executor.add_node(self.node)
        self.executor.add_node(self.helper)
        self.thread = threading.Thread(target=self.executor.spin, daemon=True)
        self.thread.start()

    def wait(self, predicate, timeout):
        import time
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if predicate():
                return True
            time.sleep(0.05)
        return predicate()

    def close(self):
        self.executor.shutdown(timeout_sec=1.0)
        self.node.destroy_node()
        self.helper.destroy_node()


@pytest.fixture
def spun(ros):
    made = []

    def make(**kwargs):
        made.append(Spun(**kwargs))
        return made[-1]
    yield make
    for item in made:
        item.close()


def test_user_reliability_override_of_a_relative_topic_survives_rematching(spun):
    """The override parameter is named by the resolved topic; a rematch must respect it."""
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import Image
    rig = spun(namespace='/robot1', image_topics=['cam/image_raw'],
               **{'qos_overrides./robot1/cam/image_raw.subscription.reliability':
                  'best_effort'})
    cam = rig.node.cameras.cameras[0]
    rig.helper.create_publisher(Image, '/robot1/cam/image_raw',
                                QoSProfile(depth=5, reliability=ReliabilityPolicy.RELIABLE))
    assert rig.wait(lambda: cam.sub is not None, 10.0)
    assert cam.qos_name == 'reliable'
    assert cam.sub.qos_profile.reliability == ReliabilityPolicy.BEST_EFFORT  # the override
    rig.helper.create_publisher(Image, '/robot1/cam/image_raw',
                                QoSProfile(depth=5, reliability=ReliabilityPolicy.BEST_EFFORT))
    assert not rig.wait(lambda: cam.qos_name != 'reliable', 3.0), \
        'the node re-subscribed over the user override'
    assert cam.sub.qos_profile.reliability == ReliabilityPolicy.BEST_EFFORT


def test_subscriptions_and_diagnostics_run_with_sim_time_and_no_clock(spun):
    """Timers on ROS time never fire while /clock is silent: these run on the steady clock."""
    from rclpy.qos import QoSProfile
    from sensor_msgs.msg import Image
    rig = spun(image_topics=['/simcam/image_raw'], use_sim_time=True, diagnostics_period=0.2)
    cam = rig.node.cameras.cameras[0]
    assert rig.node.get_clock().now().nanoseconds == 0  # sim time, no /clock
    rig.helper.create_publisher(Image, '/simcam/image_raw', QoSProfile(depth=5))
    assert rig.wait(lambda: cam.sub is not None, 10.0), 'auto QoS never subscribed'
    heard = []
    from diagnostic_msgs.msg import DiagnosticArray
    rig.helper.create_subscription(DiagnosticArray, '/diagnostics', heard.append, 10)
    assert rig.wait(lambda: len(heard) >= 2, 10.0), 'no diagnostics under sim time'


def test_chunks_carry_the_node_session(spun):
    rig = spun(image_topics=['/sess/image_raw'])
    session = rig.node.session.session_id
    assert session > 0
    stream = ChunkStream(1, 10, session=session)
    info = stream.add(np.zeros((3, 3), np.float32), np.zeros((3, 3), np.uint8))[0][0]
    assert ChunkInfo.decode(info.encode()).session == session


def test_a_restarted_publisher_is_not_stale():
    """A restarted node counts recon from 1 again: a newer session must win, an older one lose."""
    pts, rgb = np.zeros((2, 3), np.float32), np.zeros((2, 3), np.uint8)
    asm = ChunkAssembler()
    first = ChunkStream(7, 10, session=1000)
    for info, cloud in first.add(pts, rgb) + first.finish():
        asm.add(info, cloud)
    assert asm.completed == 1
    second = ChunkStream(1, 10, session=2000)  # the restarted node
    got = [asm.add(info, cloud) for info, cloud in second.add(pts, rgb) + second.finish()]
    assert got[-1] is not None and asm.completed == 2 and asm.ignored_stale == 0
    late = ChunkStream(8, 10, session=1000)  # a late chunk of the old run
    assert asm.add(*late.add(pts, rgb)[0]) is None and asm.ignored_stale == 1
    legacy = ChunkInfo.decode('aetherscan_chunk:recon=3:index=0:count=1:last=1')
    assert legacy.session == 0 and ChunkInfo.decode(legacy.encode()) == legacy


HUMBLE = textwrap.dedent("""
    import sys, time
    import rclpy
    from rclpy.node import Node
    import rclpy.qos_event  # (on Jazzy an alias of event_handler: load it before hiding that)
    sys.modules['rclpy.event_handler'] = None       # Humble: only rclpy.qos_event
    del Node.add_post_set_parameters_callback        # Humble: no post-set callback
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.parameter import Parameter
    from aetherscan_ros.node import AetherscanNode
    from aetherscan_ros.node.main import init_rclpy
    init_rclpy()
    def no_backend():
        raise RuntimeError('no backend in this test')
    node = AetherscanNode(backend_factory=no_backend, parameter_overrides=[
        Parameter('image_topics', value=['/humble/image_raw']),
        Parameter('min_views', value=2)])
    assert not node._post_set.native
    ex = SingleThreadedExecutor()
    ex.add_node(node)
    result = node.set_parameters([Parameter('max_views', value=5)])[0]
    assert result.successful, result.reason
    end = time.monotonic() + 5
    while node.config.max_views != 5 and time.monotonic() < end:
        ex.spin_once(timeout_sec=0.1)
    print('max_views', node.config.max_views, node.session.buffer.max_views)
    from aetherscan_ros.node import compat
    print('events from', compat.EVENT_MODULE)
    node.destroy_node()
    rclpy.try_shutdown()
""")


def test_humble_fallbacks_reconfigure_after_a_parameter_change():
    out = subprocess.run([sys.executable, '-c', HUMBLE], capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr
    assert 'max_views 5 5' in out.stdout, out.stdout + out.stderr
    assert 'events from rclpy.qos_event' in out.stdout
