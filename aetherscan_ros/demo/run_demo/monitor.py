# Copyright 2026 The AetherScan ROS Authors
# SPDX-License-Identifier: Apache-2.0
"""
The receiving side of the demo and the node tests, and the child processes they start.

:class:`NodeMonitor` subscribes to everything ``aetherscan_node`` publishes (snapshot and
mapping mode) and calls its services; :func:`start_process` / :func:`stop_process` run a
Python module as a child in its own process group; :func:`node_command` builds the
``aetherscan_node`` command line with parameter overrides.
"""

import os
from pathlib import Path
import signal
import subprocess
import sys
import time
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

NODE_NS = '/aetherscan_node'


class NodeMonitor:
    """
    Subscribe to everything ``aetherscan_node`` publishes and call its services.

    Collected: ``events`` (dicts, in arrival order), ``chunks`` (``(ChunkInfo, CloudArrays)``),
    ``assembled`` (reconstruction id -> reassembled ``CloudArrays``), ``cloud`` (the latest
    ``~/cloud`` as ``CloudArrays``) and ``cloud_msg``, ``tf`` (child frame -> TransformStamped
    from the latest ``/tf_static`` message of the node), ``poses`` (latest PoseArray),
    ``markers`` (latest MarkerArray), ``diagnostics`` (latest key/value dict of the node); in
    mapping mode ``map`` (the latest ``~/map`` as ``CloudArrays``), ``map_msg``, ``path`` (the
    latest ``~/path``, see :meth:`path_poses`) and ``map_diagnostics`` (the node's ``mapping``
    status). Needs ``rclpy.init()`` done by the caller.
    """

    def __init__(self, node_ns: str = NODE_NS,
                 on_event: Optional[Callable[[dict], None]] = None):
        from diagnostic_msgs.msg import DiagnosticArray
        from geometry_msgs.msg import PoseArray
        from nav_msgs.msg import Path as PathMsg
        from rclpy.executors import SingleThreadedExecutor
        from rclpy.node import Node
        from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
        from sensor_msgs.msg import PointCloud2
        from std_msgs.msg import String
        from std_srvs.srv import Trigger
        from tf2_msgs.msg import TFMessage
        from visualization_msgs.msg import MarkerArray

        from aetherscan_ros.cloud import ChunkAssembler

        self.node = Node(f'aetherscan_monitor_{os.getpid()}')
        self.node_ns = node_ns.rstrip('/')
        self._executor = SingleThreadedExecutor()
        self._executor.add_node(self.node)
        self._on_event = on_event
        self.events: List[dict] = []
        self.chunks: List[Tuple[object, object]] = []
        self.assembled: Dict[int, object] = {}
        self.assembler = ChunkAssembler()
        self.cloud = None
        self.cloud_msg = None
        self.tf: Dict[str, object] = {}
        self.poses = None
        self.markers = None
        self.diagnostics: Dict[str, str] = {}
        self.map_diagnostics: Dict[str, str] = {}
        self.map = None
        self.map_msg = None
        self.path = None
        latched = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE,
                             durability=DurabilityPolicy.TRANSIENT_LOCAL)
        stream = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE)
        history = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE,
                             durability=DurabilityPolicy.TRANSIENT_LOCAL)
        ns = self.node_ns
        sub = self.node.create_subscription
        sub(String, f'{ns}/events', self._event_cb, history)
        sub(PointCloud2, f'{ns}/points', self._points_cb, stream)
        sub(PointCloud2, f'{ns}/cloud', self._cloud_cb, latched)
        sub(PointCloud2, f'{ns}/map', self._map_cb, latched)
        sub(PathMsg, f'{ns}/path', lambda m: setattr(self, 'path', m), latched)
        sub(PoseArray, f'{ns}/camera_poses', lambda m: setattr(self, 'poses', m), latched)
        sub(MarkerArray, f'{ns}/cameras', lambda m: setattr(self, 'markers', m), latched)
        sub(TFMessage, '/tf_static', self._tf_cb, latched)
        sub(DiagnosticArray, '/diagnostics', self._diag_cb, QoSProfile(depth=10))
        self._clients = {name: self.node.create_client(Trigger, f'{ns}/{name}')
                         for name in ('reconstruct', 'reset', 'save')}

    # callbacks
    def _event_cb(self, msg):
        from aetherscan_ros.ros.events import parse_event
        event = parse_event(msg)
        self.events.append(event)
        if self._on_event is not None:
            self._on_event(event)

    def _points_cb(self, msg):
        from aetherscan_ros.ros.pointcloud2 import from_pointcloud2
        cloud, info = from_pointcloud2(msg, copy=True, source=f'{self.node_ns}/points')
        self.chunks.append((info, cloud))
        full = self.assembler.add(info, cloud)
        if full is not None and info is not None:
            self.assembled[info.recon] = full

    def _cloud_cb(self, msg):
        from aetherscan_ros.ros.pointcloud2 import from_pointcloud2
        self.cloud, _ = from_pointcloud2(msg, copy=True, source=f'{self.node_ns}/cloud')
        self.cloud_msg = msg

    def _map_cb(self, msg):
        from aetherscan_ros.ros.pointcloud2 import from_pointcloud2
        self.map, _ = from_pointcloud2(msg, copy=True, source=f'{self.node_ns}/map')
        self.map_msg = msg

    def path_poses(self) -> Tuple[np.ndarray, np.ndarray]:
        """Return ``(stamps_ns [K], poses [K, 4, 4])`` of the latest ``~/path``."""
        from aetherscan_ros.core.geometry import quaternion_to_rotation_matrix
        items = list(self.path.poses) if self.path is not None else []
        poses = np.tile(np.eye(4), (len(items), 1, 1))
        stamps = np.zeros(len(items), np.int64)
        for i, item in enumerate(items):
            p, q = item.pose.position, item.pose.orientation
            poses[i, :3, :3] = quaternion_to_rotation_matrix(np.array([q.x, q.y, q.z, q.w]))
            poses[i, :3, 3] = [p.x, p.y, p.z]
            stamps[i] = item.header.stamp.sec * 1_000_000_000 + item.header.stamp.nanosec
        return stamps, poses

    def _tf_cb(self, msg):
        children = {t.child_frame_id: t for t in msg.transforms}
        if any(name.endswith('_optical') for name in children):
            self.tf = children  # the node publishes the whole current set each time

    def _diag_cb(self, msg):
        for status in msg.status:
            if status.name.startswith(self.node_ns.lstrip('/') or 'aetherscan_node') or \
                    'aetherscan_node' in status.name:
                values = {kv.key: kv.value for kv in status.values}
                values['_level'] = int.from_bytes(status.level, 'little') \
                    if isinstance(status.level, bytes) else int(status.level)
                values['_message'] = status.message
                if status.name.endswith(': mapping'):  # the mapping status of the same node
                    self.map_diagnostics = values
                else:
                    self.diagnostics = values

    # waiting
    def spin_until(self, predicate: Callable[[], bool], timeout: float) -> bool:
        """Spin until ``predicate()`` is true or ``timeout`` seconds pass; return the outcome."""
        end = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > end:
                return False
            self._executor.spin_once(timeout_sec=0.05)
        return True

    def spin_for(self, seconds: float):
        """Spin for ``seconds``."""
        self.spin_until(lambda: False, seconds)

    def find_event(self, event: str, start: int = 0, **match) -> Optional[dict]:
        """Return the first event named ``event`` at index >= ``start`` matching ``match``."""
        for item in self.events[start:]:
            if item.get('event') == event and all(item.get(k) == v for k, v in match.items()):
                return item
        return None

    def wait_event(self, event: str, timeout: float, start: int = 0, **match) -> Optional[dict]:
        """Spin until :meth:`find_event` finds the event; return it or ``None``."""
        self.spin_until(lambda: self.find_event(event, start, **match) is not None, timeout)
        return self.find_event(event, start, **match)

    def wait_for_node(self, timeout: float) -> bool:
        """Wait until the node's services are available."""
        end = time.monotonic() + timeout
        for client in self._clients.values():
            while not client.wait_for_service(timeout_sec=0.2):
                self._executor.spin_once(timeout_sec=0.05)
                if time.monotonic() > end:
                    return False
        return True

    def call(self, service: str, timeout: float = 30.0) -> Tuple[bool, str]:
        """Call ``~/<service>`` (std_srvs/Trigger); return ``(success, message)``."""
        from std_srvs.srv import Trigger
        client = self._clients[service]
        if not client.wait_for_service(timeout_sec=timeout):
            raise TimeoutError(f'{self.node_ns}/{service} is not available')
        future = client.call_async(Trigger.Request())
        if not self.spin_until(future.done, timeout):
            raise TimeoutError(f'{self.node_ns}/{service} did not answer in {timeout} s')
        response = future.result()
        return bool(response.success), str(response.message)

    def view_poses(self, frame_prefix: str = '') -> np.ndarray:
        """Return ``[V, 4, 4]`` camera poses from the received TF (NaN for missing views)."""
        from aetherscan_ros.ros.tf import transform_to_matrix, view_frame
        indices = [int(name[len(frame_prefix) + 7:-8]) for name in self.tf
                   if name.startswith(frame_prefix + 'camera_') and name.endswith('_optical')]
        count = max(indices) + 1 if indices else 0
        out = np.full((count, 4, 4), np.nan)
        for view in range(count):
            msg = self.tf.get(view_frame(frame_prefix, view))
            if msg is not None:
                out[view] = transform_to_matrix(msg)
        return out

    def close(self):
        """Destroy the monitor node."""
        self._executor.remove_node(self.node)
        self.node.destroy_node()


def start_process(args: Sequence[str], log_path: Path, env: dict) -> subprocess.Popen:
    """Start a Python module as a child process (own process group), logging to ``log_path``."""
    log = open(log_path, 'w')
    return subprocess.Popen([sys.executable, *args], stdout=log, stderr=subprocess.STDOUT,
                            env=env, start_new_session=True)


def stop_process(proc: Optional[subprocess.Popen], timeout: float = 5.0) -> Optional[int]:
    """Stop a child: SIGINT, then SIGKILL after ``timeout``; return its exit code."""
    if proc is None:
        return None
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGINT)
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=timeout)
        except ProcessLookupError:
            pass
    return proc.returncode


def node_command(overrides: Dict[str, object]) -> List[str]:
    """Return the arguments that start ``aetherscan_node`` with parameter overrides."""
    args = ['-m', 'aetherscan_ros.node', '--ros-args']
    for name, value in overrides.items():
        if isinstance(value, (list, tuple)):
            value = '[' + ','.join(f"'{v}'" for v in value) + ']'
        elif isinstance(value, bool):
            value = 'true' if value else 'false'
        elif isinstance(value, str):
            value = f"'{value}'"  # YAML-quoted: '' stays a string, 'true' is not a bool
        args += ['-p', f'{name}:={value}']
    return args


def print_event(event: dict):
    """Print one ``~/events`` entry on one line (what the demo shows live)."""
    kind = event.get('event')
    skip = ('event', 'info', 'frames', 'cameras')
    detail = ', '.join(f'{k}={v}' for k, v in event.items() if k not in skip)
    print(f'  [event] {kind}: {detail}', flush=True)
