# Copyright 2026 The AetherScan ROS Authors
# SPDX-License-Identifier: Apache-2.0
"""
The managed node and pause/resume, across processes.

``aetherscan_lifecycle_node`` is driven through ``lifecycle_msgs`` services from this process:
nothing but parameters exists until configure; images are dropped while inactive and
reconstructed while active; cleanup removes every publisher, subscription and service it
made; shutdown ends the process with code 0. The plain node's ``~/pause`` / ``~/resume``
close and open its inputs the same way.
"""

import os
import time

import pytest

from aetherscan_ros.demo.run_demo import node_command, NodeMonitor, start_process, stop_process

pytestmark = [pytest.mark.ros, pytest.mark.slow]

NS = '/aetherscan_node'
TOPIC = '/lc/image_raw'
VIEWS = 3
PARAMS = {'backend': 'classical', 'image_topics': [TOPIC], 'min_views': VIEWS,
          'max_views': VIEWS, 'keyframe_min_interval': 0.0, 'keyframe_min_change': 0.0,
          'no_frames_warning': 0.0, 'use_camera_info': False, 'image_qos': 'reliable'}


@pytest.fixture(scope='module')
def images():
    from aetherscan_ros.demo.scene import make_scene
    return make_scene(num_views=VIEWS, width=320, height=240, seed=2).images


class Driver:
    """Lifecycle clients + an image publisher on the monitor's node."""

    def __init__(self, monitor):
        from lifecycle_msgs.srv import ChangeState, GetState
        from rclpy.qos import QoSProfile, ReliabilityPolicy
        from sensor_msgs.msg import Image
        self.monitor = monitor
        node = monitor.node
        self.get_state = node.create_client(GetState, f'{NS}/get_state')
        self.change_state = node.create_client(ChangeState, f'{NS}/change_state')
        self.pub = node.create_publisher(Image, TOPIC,
                                         QoSProfile(depth=10,
                                                    reliability=ReliabilityPolicy.RELIABLE))
        self.stamp = 1_000_000_000

    def _call(self, client, request, timeout=30.0):
        assert client.wait_for_service(timeout_sec=timeout), client.srv_name
        future = client.call_async(request)
        assert self.monitor.spin_until(future.done, timeout), client.srv_name
        return future.result()

    def state(self) -> str:
        from lifecycle_msgs.srv import GetState
        return self._call(self.get_state, GetState.Request()).current_state.label

    def transition(self, label: str) -> bool:
        from lifecycle_msgs.msg import Transition
        from lifecycle_msgs.srv import ChangeState
        ids = {'configure': Transition.TRANSITION_CONFIGURE,
               'activate': Transition.TRANSITION_ACTIVATE,
               'deactivate': Transition.TRANSITION_DEACTIVATE,
               'cleanup': Transition.TRANSITION_CLEANUP,
               'shutdown': Transition.TRANSITION_INACTIVE_SHUTDOWN}
        request = ChangeState.Request()
        request.transition.id = ids[label]
        return bool(self._call(self.change_state, request, 120.0).success)

    def publish(self, images):
        from aetherscan_ros.ros.images import rgb_to_image_msg
        assert self.monitor.spin_until(lambda: self.pub.get_subscription_count() > 0, 30.0), \
            'the node does not subscribe to the images'
        for rgb in images:
            self.stamp += 200_000_000
            self.pub.publish(rgb_to_image_msg(rgb, self.stamp, 'lc_optical'))
            self.monitor.spin_for(0.15)

    def node_entities(self):
        """Return the node's (publisher topics, services) as this process's graph knows them."""
        from rclpy.node import NodeNameNonExistentError
        node = self.monitor.node
        assert self.monitor.spin_until(
            lambda: ('aetherscan_node', '/') in node.get_node_names_and_namespaces(), 20.0)
        try:
            pubs = {name for name, _ in node.get_publisher_names_and_types_by_node(
                'aetherscan_node', '/')}
            services = {name for name, _ in node.get_service_names_and_types_by_node(
                'aetherscan_node', '/')}
        except NodeNameNonExistentError:  # discovery of the node itself still on its way
            return set(), set()
        return pubs, services


def _start(tmp_path, lifecycle: bool):
    env = dict(os.environ)
    args = node_command({**PARAMS, 'output_dir': str(tmp_path / 'out')})
    if lifecycle:
        args = ['-c', 'from aetherscan_ros.node import lifecycle_main; lifecycle_main()',
                *args[2:]]
    return start_process(args, tmp_path / 'node.log', env)


def test_lifecycle_transitions_build_gate_and_tear_down(ros, tmp_path, images):
    proc = _start(tmp_path, lifecycle=True)
    monitor = NodeMonitor()
    log = tmp_path / 'node.log'
    try:
        drive = Driver(monitor)
        assert drive.state() == 'unconfigured', log.read_text()
        assert monitor.spin_until(lambda: f'{NS}/change_state' in drive.node_entities()[1],
                                  20.0), drive.node_entities()
        pubs, services = drive.node_entities()
        assert f'{NS}/events' not in pubs and f'{NS}/save' not in services, (pubs, services)

        assert drive.transition('configure'), log.read_text()
        assert drive.state() == 'inactive'
        assert monitor.spin_until(
            lambda: {f'{NS}/events', f'{NS}/points', f'{NS}/cloud'} <= drive.node_entities()[0],
            20.0), drive.node_entities()
        assert monitor.wait_event('backend_selected', 60.0), log.read_text()

        drive.publish(images)  # inactive: counted and dropped
        monitor.spin_for(1.0)
        assert monitor.find_event('image_received') is None
        assert monitor.find_event('reconstruction_started') is None
        paused = monitor.call('reconstruct')
        assert paused[0] is False and 'inactive' in paused[1], paused

        assert drive.transition('activate')
        assert drive.state() == 'active'
        drive.publish(images)
        done = monitor.wait_event('reconstruction_complete', 120.0)
        assert done is not None, log.read_text()
        assert done['views'] == VIEWS, done

        assert drive.transition('deactivate')
        assert drive.state() == 'inactive'
        assert drive.transition('cleanup')
        assert drive.state() == 'unconfigured'
        assert monitor.spin_until(
            lambda: not ({f'{NS}/events', f'{NS}/points'} & drive.node_entities()[0]) and
            f'{NS}/save' not in drive.node_entities()[1], 20.0), drive.node_entities()

        # configure again after cleanup: a fresh set of entities that works
        assert drive.transition('configure')
        assert drive.transition('activate')
        start = len(monitor.events)
        drive.publish(images)
        assert monitor.wait_event('reconstruction_complete', 120.0, start=start) is not None

        assert drive.transition('deactivate')
        assert drive.transition('shutdown')
        deadline = time.monotonic() + 30.0
        while proc.poll() is None and time.monotonic() < deadline:
            monitor.spin_for(0.2)
        assert proc.returncode == 0, log.read_text()
        assert 'Traceback' not in log.read_text()
    finally:
        stop_process(proc)
        monitor.close()


def test_pause_and_resume_close_and_open_the_inputs(ros, tmp_path, images):
    proc = _start(tmp_path, lifecycle=False)
    monitor = NodeMonitor()
    log = tmp_path / 'node.log'
    try:
        drive = Driver(monitor)
        assert monitor.wait_for_node(60.0), log.read_text()
        monitor._clients.update(
            {name: monitor.node.create_client(_trigger(), f'{NS}/{name}')
             for name in ('pause', 'resume')})
        assert monitor.wait_event('backend_selected', 60.0), log.read_text()
        ok, message = monitor.call('pause')
        assert ok and message.startswith('paused'), message
        assert monitor.wait_event('paused', 10.0) is not None
        assert monitor.call('pause') == (True, 'already paused')
        drive.publish(images)
        monitor.spin_for(1.0)
        assert monitor.find_event('image_received') is None
        started, why = monitor.call('reconstruct')
        assert not started and 'paused' in why, why

        ok, message = monitor.call('resume')
        assert ok and message.startswith('resumed'), message
        drive.publish(images)
        done = monitor.wait_event('reconstruction_complete', 120.0)
        assert done is not None, log.read_text()
        assert monitor.spin_until(lambda: monitor.diagnostics.get('frames_paused') == str(VIEWS),
                                  15.0), monitor.diagnostics
    finally:
        stop_process(proc)
        monitor.close()


def _trigger():
    from std_srvs.srv import Trigger
    return Trigger
