# Copyright 2026 The AetherScan ROS Authors
# SPDX-License-Identifier: Apache-2.0
"""
``make demo``: the node on the demo scene, end to end over ROS, scored against ground truth.

Three processes on a private ``ROS_DOMAIN_ID`` with ``ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST``:
``aetherscan_node``; the demo camera (:mod:`aetherscan_ros.demo.publisher`, the scene's frames
plus camera_info as a camera stream); and this one, which prints the node's live ``~/events``,
receives the streamed ``~/points`` chunks, ``~/cloud``, the camera TF frames and poses, checks
that the chunks reassemble to exactly ``~/cloud``, calls ``~/save``, scores what it received
against the ground truth and leaves ``cloud.ply``, ``poses.json`` and ``preview.png`` in
``--output-dir``. The child processes are always stopped, also on errors and Ctrl-C.

:class:`NodeMonitor` is the receiving side, also used by the node tests.
"""

import argparse
import os
from pathlib import Path
import shutil
import signal
import subprocess
import sys
import time
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from aetherscan_ros.core.process_env import with_hugepage_malloc
from aetherscan_ros.node.ros_domain import claim_domain_id

NODE_NS = '/aetherscan_node'


class NodeMonitor:
    """
    Subscribe to everything ``aetherscan_node`` publishes and call its services.

    Collected: ``events`` (dicts, in arrival order), ``chunks`` (``(ChunkInfo, CloudArrays)``),
    ``assembled`` (reconstruction id -> reassembled ``CloudArrays``), ``cloud`` (the latest
    ``~/cloud`` as ``CloudArrays``) and ``cloud_msg``, ``tf`` (child frame -> TransformStamped
    from the latest ``/tf_static`` message of the node), ``poses`` (latest PoseArray),
    ``markers`` (latest MarkerArray), ``diagnostics`` (latest key/value dict of the node).
    Needs ``rclpy.init()`` done by the caller.
    """

    def __init__(self, node_ns: str = NODE_NS,
                 on_event: Optional[Callable[[dict], None]] = None):
        from diagnostic_msgs.msg import DiagnosticArray
        from geometry_msgs.msg import PoseArray
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

    def _tf_cb(self, msg):
        children = {t.child_frame_id: t for t in msg.transforms}
        if any(name.endswith('_optical') for name in children):
            self.tf = children  # the node publishes the whole current set each time

    def _diag_cb(self, msg):
        for status in msg.status:
            if status.name.startswith(self.node_ns.lstrip('/') or 'aetherscan_node') or \
                    'aetherscan_node' in status.name:
                self.diagnostics = {kv.key: kv.value for kv in status.values}
                self.diagnostics['_level'] = int.from_bytes(status.level, 'little') \
                    if isinstance(status.level, bytes) else int(status.level)
                self.diagnostics['_message'] = status.message

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


def _print_event(event: dict):
    kind = event.get('event')
    skip = ('event', 'info', 'frames', 'cameras')
    detail = ', '.join(f'{k}={v}' for k, v in event.items() if k not in skip)
    print(f'  [event] {kind}: {detail}', flush=True)


def metric_score(monitor, scene, fixed: str, points: np.ndarray) -> str:
    """
    Return the score in metres of the anchored result: no alignment, straight through TF.

    The cloud (``world_frame``) and the camera frames are carried into ``fixed`` by the
    ``fixed -> world_frame`` link the node published, and compared with the ground truth
    (the demo's world is ``fixed``: the camera published its poses there).
    """
    from scipy.spatial import cKDTree

    from aetherscan_ros.ros.tf import transform_to_matrix
    anchor = monitor.find_event('anchor') or {}
    links = [m for m in monitor.tf.values() if m.header.frame_id == fixed]
    if not anchor.get('ok') or not links:
        return f'not anchored in {fixed}: {anchor.get("reason", "no anchor event")}'
    to_fixed = transform_to_matrix(links[0])
    pts = np.asarray(points, np.float64) @ to_fixed[:3, :3].T + to_fixed[:3, 3]
    dist, _ = cKDTree(scene.surface_samples).query(pts[::5])
    poses = to_fixed @ monitor.view_poses()
    ok = np.isfinite(poses[:, 0, 3])
    centre = np.linalg.norm(poses[ok, :3, 3] - scene.poses_c2w[:len(poses)][ok, :3, 3], axis=1)
    return (f'anchored in {fixed} (scale {anchor["scale"]:.4f}, residual RMS '
            f'{anchor["residual_rms_m"] * 1000:.1f} mm, {len(anchor["views_used"])} views): '
            f'cloud median distance to the true surface {np.median(dist) * 1000:.1f} mm '
            f'({np.median(dist) / scene.extent:.3%} of the extent), camera centres mean '
            f'{centre.mean() * 1000:.1f} mm, max {centre.max() * 1000:.1f} mm - metres, no '
            'alignment')


def parse_args(argv=None):
    """Parse the command line."""
    parser = argparse.ArgumentParser(description=__doc__.strip().split('\n')[0])
    parser.add_argument('--output-dir', default='output/demo')
    parser.add_argument('--backend', default='auto', choices=('auto', 'fast3r', 'classical'))
    parser.add_argument('--model', default='', help='Fast3R checkpoint (dir or repo id)')
    parser.add_argument('--transport', default='raw', choices=('raw', 'compressed'))
    parser.add_argument('--qos', default='reliable', choices=('reliable', 'best_effort'))
    parser.add_argument('--num-views', type=int, default=8)
    parser.add_argument('--width', type=int, default=640)
    parser.add_argument('--height', type=int, default=480)
    parser.add_argument('--fixed-frame', default='odom',
                        help='the camera publishes its poses on /tf in this frame and the node '
                        'anchors the reconstruction there (metres); empty = unanchored')
    parser.add_argument('--timeout', type=float, default=900.0,
                        help='seconds to wait for the reconstruction')
    return parser.parse_args(argv)


def run(args) -> int:
    """Run the demo; return the exit code (0 = reconstructed, streamed, saved and scored)."""
    import rclpy

    from aetherscan_ros.demo.evaluation import evaluate, format_scores
    from aetherscan_ros.demo.scene import make_scene, write_scene

    out = Path(args.output_dir).resolve()
    out.mkdir(parents=True, exist_ok=True)
    domain, _lock = claim_domain_id()
    env = dict(os.environ, ROS_DOMAIN_ID=str(domain), ROS_AUTOMATIC_DISCOVERY_RANGE='LOCALHOST',
               PYTHONUNBUFFERED='1')
    env.setdefault('ROS_LOG_DIR', str(out / 'ros_log'))
    env.setdefault('HF_HUB_OFFLINE', '1')  # the demo never downloads weights
    os.environ.update({k: env[k] for k in ('ROS_DOMAIN_ID', 'ROS_AUTOMATIC_DISCOVERY_RANGE',
                                           'ROS_LOG_DIR')})
    print(f'aetherscan demo: ROS_DOMAIN_ID={domain} (loopback only), output {out}', flush=True)
    t0 = time.monotonic()
    scene = make_scene(num_views=args.num_views, width=args.width, height=args.height)
    scene_dir = write_scene(scene, out / 'scene').parent
    print(f'rendered the demo scene: {scene.num_views} views {args.width}x{args.height} '
          f'({time.monotonic() - t0:.1f} s), ground truth in {scene_dir}', flush=True)
    node_proc = pub_proc = None
    rclpy.init()
    monitor = NodeMonitor(on_event=_print_event)
    try:
        node_proc = start_process(node_command({
            'backend': args.backend, 'model': args.model,
            'image_topics': ['/camera/image_raw'], 'image_transport': args.transport,
            'min_views': args.num_views, 'max_views': args.num_views,
            'keyframe_min_interval': 0.1, 'output_dir': str(out / 'node'),
            'fixed_frame': args.fixed_frame,
        }), out / 'node.log', {**env, **with_hugepage_malloc(env)})  # as the launch file
        if not monitor.wait_for_node(60.0):
            print(f'aetherscan_node did not start; see {out / "node.log"}', file=sys.stderr)
            return 1
        if monitor.wait_event('backend_selected', 300.0) is None:
            print(f'the backend did not load; see {out / "node.log"}', file=sys.stderr)
            return 1
        pub_proc = start_process([
            '-m', 'aetherscan_ros.demo.publisher', '--scene-dir', str(scene_dir),
            '--transport', args.transport, '--qos', args.qos, '--rate', '4',
            *(['--tf-frame', args.fixed_frame, '--tf-noise', '0.005', '0.2']
              if args.fixed_frame else [])],
            out / 'publisher.log', env)
        done = monitor.spin_until(
            lambda: monitor.find_event('reconstruction_complete') is not None or
            monitor.find_event('error', stage='reconstruct') is not None, args.timeout)
        error = monitor.find_event('error')
        complete = monitor.find_event('reconstruction_complete')
        if not done or complete is None:
            reason = error['message'] if error else f'no result after {args.timeout:.0f} s'
            print(f'reconstruction failed: {reason}; see {out / "node.log"}', file=sys.stderr)
            return 1
        recon = complete['reconstruction']
        monitor.spin_until(lambda: recon in monitor.assembled and monitor.cloud is not None and
                           monitor.tf, 30.0)
        streamed = monitor.assembled.get(recon)
        if streamed is None or monitor.cloud is None:
            print('the streamed chunks or ~/cloud did not arrive', file=sys.stderr)
            return 1
        same = all(np.array_equal(a, b) for a, b in zip(streamed, monitor.cloud))
        print(f'received {len([c for c in monitor.chunks if c[0] and c[0].recon == recon])} '
              f'chunks = {len(streamed)} points; identical to ~/cloud: {same}; '
              f'{sum(n.endswith("_optical") for n in monitor.tf)} camera TF frames', flush=True)
        ok, message = monitor.call('save', 120.0)
        if not ok:
            print(f'~/save failed: {message}', file=sys.stderr)
            return 1
        saved = Path(message)
        for name in ('cloud.ply', 'poses.json', 'preview.png'):
            shutil.copy2(saved / name, out / name)

        class _Received:
            points = streamed.points
            poses_c2w = monitor.view_poses()

        scores = evaluate(_Received, scene)
        print('score of what arrived over ROS (chunks + TF) against the ground truth:')
        print(format_scores(scores), flush=True)
        if args.fixed_frame:
            print(metric_score(monitor, scene, args.fixed_frame, streamed.points), flush=True)
        print(f'backend {complete["backend"]}, {complete["seconds"]:.1f} s; wrote '
              f'{out / "cloud.ply"}, {out / "poses.json"}, {out / "preview.png"}', flush=True)
        return 0 if same else 1
    finally:
        stop_process(pub_proc)
        stop_process(node_proc)
        monitor.close()
        rclpy.try_shutdown()


def main(argv=None):
    """Entry point of ``python -m aetherscan_ros.demo.run_demo``."""
    try:
        return run(parse_args(argv))
    except KeyboardInterrupt:
        return 130


if __name__ == '__main__':
    sys.exit(main())
