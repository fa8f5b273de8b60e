# Copyright 2026 The AetherScan ROS Authors
# SPDX-License-Identifier: Apache-2.0
"""
Publish the demo scene as a camera stream: images plus camera_info, like a camera driver.

``python -m aetherscan_ros.demo.publisher [--transport raw|compressed] [--qos reliable|best_effort]
[--rate HZ] [--num-views N] [--width W --height H] [--distortion none|plumb_bob|equidistant]
[--scene-dir DIR]``

Topics (under ``--namespace``, default ``/camera``): ``image_raw`` (sensor_msgs/Image rgb8),
``image_raw/compressed`` (sensor_msgs/CompressedImage jpeg/png), ``camera_info``. Each view is
published once (``--loops`` repeats the sequence), stamped with the publisher's clock, at
``--rate`` views per second, after a subscriber to the image topic has appeared (so no view is
published into the void). camera_info is published with every image. Exits 0 when done.

``--distortion plumb_bob|equidistant`` publishes what a camera driver with a real lens does: raw
distorted images (:mod:`aetherscan_ros.demo.distortion`) and a camera_info carrying the lens
(``distortion_model``, ``D``, ``K``; ``R`` identity, ``P`` the undistorted camera). A
``--scene-dir`` with a ``camera_info.yaml`` (``aetherscan demo-scene --distortion ...``) is
published with that calibration.

For a mapping node: ``--stamp-log FILE`` records which stamp each view got (to match the
node's keyframes to ground-truth views), and ``--pace-events <node>/events --max-ahead N``
holds the camera back while N published views are not yet in a ``window_complete`` event (a
slow node slows the walk instead of dropping keyframes).
"""

import argparse
from dataclasses import replace
import json
from pathlib import Path
import sys
import time

import numpy as np
import rclpy
from rclpy.node import Node
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CameraInfo, CompressedImage, Image

from aetherscan_ros.core.camera_model import CameraModel
from aetherscan_ros.core.geometry import quaternion_to_rotation_matrix
from aetherscan_ros.demo.distortion import DISTORTION_CHOICES
from aetherscan_ros.ros.images import rgb_to_compressed_msg, rgb_to_image_msg
from aetherscan_ros.ros.stamps import ns_to_stamp
from aetherscan_ros.ros.tf import matrix_to_transform

FRAME_ID = 'demo_camera_optical_frame'
CAMERA_INFO_FILE = 'camera_info.yaml'  # what `aetherscan demo-scene` writes beside the frames


def parse_args(argv=None):
    """Parse the command line."""
    parser = argparse.ArgumentParser(description=__doc__.strip().split('\n')[0])
    parser.add_argument('--namespace', default='/camera')
    parser.add_argument('--transport', choices=('raw', 'compressed'), default='raw')
    parser.add_argument('--format', choices=('jpeg', 'png'), default='jpeg',
                        help='compression of --transport compressed')
    parser.add_argument('--qos', choices=('reliable', 'best_effort'), default='reliable')
    parser.add_argument('--rate', type=float, default=2.0, help='views per second')
    parser.add_argument('--num-views', type=int, default=8)
    parser.add_argument('--width', type=int, default=640)
    parser.add_argument('--height', type=int, default=480)
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--path', default='orbit', help='camera path of the demo scene')
    parser.add_argument('--distortion', choices=DISTORTION_CHOICES, default='none',
                        help='lens: publish raw distorted images and a camera_info with D '
                             '(default none: pinhole images, D = 0)')
    parser.add_argument('--scene-dir', default='',
                        help='load a scene written by write_scene instead of rendering one')
    parser.add_argument('--loops', type=int, default=1, help='times to publish the sequence')
    parser.add_argument('--frame-id', default=FRAME_ID,
                        help='header.frame_id of the images (the camera optical frame)')
    parser.add_argument('--extrinsics', nargs=8, default=None,
                        metavar=('PARENT', 'X', 'Y', 'Z', 'QX', 'QY', 'QZ', 'QW'),
                        help='publish PARENT -> frame-id on /tf_static (a rig camera mounted '
                        'on PARENT, e.g. the rig base)')
    parser.add_argument('--tf-frame', default='',
                        help='publish the camera pose of each view on /tf as <tf-frame> -> the '
                        'optical frame at the image stamp (the scene world: z up, metres)')
    parser.add_argument('--tf-noise', type=float, nargs=2, default=(0.0, 0.0),
                        metavar=('METRES', 'DEGREES'),
                        help='Gaussian noise (std) added to the /tf poses (seeded)')
    parser.add_argument('--tf-latency', type=float, default=0.0,
                        help='publish each /tf pose this many seconds after its image')
    parser.add_argument('--tf-stamp-offset', type=float, default=0.0,
                        help='stamp the /tf poses this many seconds off the image stamps '
                        '(negative: stale TF, to try the failure)')
    parser.add_argument('--tf-still', action='store_true',
                        help='publish every view at the position of the first (the robot '
                        'seems not to move: pure rotation, to try the failure)')
    parser.add_argument('--no-camera-info', action='store_true')
    parser.add_argument('--stamp-log', default='',
                        help='append one JSON line {"view": i, "stamp_ns": ...} per published '
                        'view to this file (to match keyframes to ground-truth views)')
    parser.add_argument('--pace-events', default='',
                        help="a mapping node's events topic (e.g. /aetherscan_node/events): "
                        'publish a view only while fewer than --max-ahead published views are '
                        'not yet in a window_complete event (a node that falls behind is '
                        'waited for, up to --pace-timeout seconds per view)')
    parser.add_argument('--max-ahead', type=int, default=12)
    parser.add_argument('--pace-timeout', type=float, default=120.0)
    parser.add_argument('--wait-subscriber', type=float, default=60.0,
                        help='seconds to wait for a subscriber before giving up')
    parser.add_argument('--linger', type=float, default=1.0,
                        help='seconds to stay alive after the last view (reliable delivery)')
    return parser.parse_args(argv)


def camera_info_msg(model: CameraModel, stamp_ns: int = 0, frame_id: str = '') -> CameraInfo:
    """
    Build the ``sensor_msgs/CameraInfo`` a driver publishes for ``model``.

    Carries ``distortion_model`` and ``D`` (a model without distortion as ``plumb_bob`` with
    five zeros, as drivers send it), ``K``, ``R``, ``P``, the size, binning and ROI.
    """
    msg = CameraInfo(width=int(model.width), height=int(model.height),
                     distortion_model=model.distortion_model or 'plumb_bob')
    msg.header.stamp = ns_to_stamp(stamp_ns)
    msg.header.frame_id = frame_id
    msg.d = [float(v) for v in model.D] if model.distortion_model else [0.0] * 5
    msg.k = [float(v) for v in np.asarray(model.K).reshape(-1)]
    msg.r = [float(v) for v in np.asarray(model.R).reshape(-1)]
    msg.p = [float(v) for v in np.asarray(model.P).reshape(-1)]
    msg.binning_x = int(model.binning_x) if model.binning_x > 1 else 0
    msg.binning_y = int(model.binning_y) if model.binning_y > 1 else 0
    msg.roi.x_offset, msg.roi.y_offset = int(model.roi.x_offset), int(model.roi.y_offset)
    msg.roi.width, msg.roi.height = int(model.roi.width), int(model.roi.height)
    msg.roi.do_rectify = bool(model.roi.do_rectify)
    return msg


def publish_extrinsics(node, args):
    """Publish the camera's mounting ``PARENT -> frame-id`` once on /tf_static (latched)."""
    from rclpy.qos import DurabilityPolicy
    from tf2_msgs.msg import TFMessage
    parent, *values = args.extrinsics
    x, y, z, qx, qy, qz, qw = (float(v) for v in values)
    pose = np.eye(4)
    pose[:3, :3] = quaternion_to_rotation_matrix(np.array([qx, qy, qz, qw]))
    pose[:3, 3] = [x, y, z]
    pub = node.create_publisher(TFMessage, '/tf_static', QoSProfile(
        depth=1, reliability=ReliabilityPolicy.RELIABLE,
        durability=DurabilityPolicy.TRANSIENT_LOCAL))
    pub.publish(TFMessage(transforms=[matrix_to_transform(pose, parent, args.frame_id, 0)]))
    return pub


class TfSender:
    """The camera's ground-truth pose on /tf (with optional noise and latency), as odometry."""

    def __init__(self, node, args):
        from tf2_msgs.msg import TFMessage
        self._pub = node.create_publisher(TFMessage, '/tf', QoSProfile(depth=100))
        self._msg_type = TFMessage
        self._frame = args.tf_frame
        self._child = args.frame_id
        self._noise = tuple(args.tf_noise)
        self._latency = float(args.tf_latency)
        self._rng = np.random.default_rng(args.seed + 1000)
        self._offset_ns = int(round(args.tf_stamp_offset * 1e9))
        self._still = args.tf_still
        self._first = None
        self._due = []

    def queue(self, pose_c2w: np.ndarray, stamp_ns: int):
        """Queue the pose of the view stamped ``stamp_ns`` (sent after the latency)."""
        from scipy.spatial.transform import Rotation
        pose = np.array(pose_c2w, np.float64)
        if self._first is None:
            self._first = pose[:3, 3].copy()
        if self._still:
            pose[:3, 3] = self._first
        if self._noise[0] > 0:
            pose[:3, 3] += self._rng.normal(0.0, self._noise[0], 3)
        if self._noise[1] > 0:
            turn = Rotation.from_rotvec(np.radians(self._rng.normal(0.0, self._noise[1], 3)))
            pose[:3, :3] = turn.as_matrix() @ pose[:3, :3]
        self._due.append((time.monotonic() + self._latency, matrix_to_transform(
            pose, self._frame, self._child, max(stamp_ns + self._offset_ns, 0))))
        self.send_due()

    def send_due(self):
        """Publish the queued poses whose latency has passed."""
        now = time.monotonic()
        while self._due and self._due[0][0] <= now:
            self._pub.publish(self._msg_type(transforms=[self._due.pop(0)[1]]))


class EventPacer:
    """Hold the camera back while a mapping node has too many views not yet in a window."""

    def __init__(self, node, topic: str, max_ahead: int, timeout: float):
        from rclpy.qos import DurabilityPolicy
        from std_msgs.msg import String
        self._node = node
        self._max_ahead = max(1, int(max_ahead))
        self._timeout = float(timeout)
        self._seen = set()  # keyframe names the node reported in window_complete events
        self.stalls = 0     # waits that ran into the timeout
        node.create_subscription(String, topic, self._on_event, QoSProfile(
            depth=100, reliability=ReliabilityPolicy.RELIABLE,
            durability=DurabilityPolicy.TRANSIENT_LOCAL))

    def _on_event(self, msg):
        from aetherscan_ros.ros.events import parse_event
        try:
            event = parse_event(msg)
        except ValueError:
            return
        if event.get('event') == 'window_complete':  # a failed window's may come again
            self._seen.update(event.get('keyframes') or ())

    @property
    def done(self) -> int:
        """Return how many distinct views the node reported in ``window_complete`` events."""
        return len(self._seen)

    def wait(self, published: int):
        """Spin until ``published - done < max_ahead`` or the timeout (counted in stalls)."""
        end = time.monotonic() + self._timeout
        while published - self.done >= self._max_ahead:
            if time.monotonic() > end:
                self.stalls += 1
                return
            rclpy.spin_once(self._node, timeout_sec=0.05)


def load_demo_scene(args):
    """
    Return ``(scene, CameraModel)`` to publish: rendered, or loaded from ``--scene-dir``.

    With ``--distortion`` the scene's images are the raw distorted ones and the model carries
    the lens; a ``--scene-dir`` brings its own ``camera_info.yaml`` when it has one. Raises
    ``ValueError`` for a scene that cannot be published as asked.
    """
    from aetherscan_ros.core.calibration_file import read_calibration_yaml
    from aetherscan_ros.demo.distortion import distort_scene
    from aetherscan_ros.demo.scene import load_scene, make_scene
    if args.scene_dir:
        scene = load_scene(args.scene_dir)
        calib = Path(args.scene_dir) / CAMERA_INFO_FILE
        model = read_calibration_yaml(calib) if calib.is_file() else None
        if model is not None and model.has_distortion and args.distortion != 'none':
            raise ValueError(f'{args.scene_dir} holds raw {model.distortion_model} images '
                             f'already ({calib}); drop --distortion')
    else:
        scene = make_scene(num_views=args.num_views, width=args.width, height=args.height,
                           seed=args.seed, path=args.path)
        model = None
    if args.distortion != 'none':
        images, model = distort_scene(scene, args.distortion)
        scene = replace(scene, images=images)
    if model is None:
        width, height = scene.size
        model = CameraModel.pinhole(scene.K, width, height)
    return scene, model


def main(argv=None):
    """Publish the scene; return the process exit code."""
    args = parse_args(argv)
    try:
        scene, model = load_demo_scene(args)
    except ValueError as exc:
        sys.stderr.write(f'aetherscan demo publisher: error: {exc}\n')
        return 2
    rclpy.init()
    node = Node('aetherscan_demo_camera')
    log = node.get_logger()
    qos = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=10,
                     reliability=(ReliabilityPolicy.RELIABLE if args.qos == 'reliable'
                                  else ReliabilityPolicy.BEST_EFFORT))
    ns = args.namespace.rstrip('/')
    if args.transport == 'raw':
        topic, msg_type = f'{ns}/image_raw', Image
    else:
        topic, msg_type = f'{ns}/image_raw/compressed', CompressedImage
    pub = node.create_publisher(msg_type, topic, qos)
    info_pub = node.create_publisher(CameraInfo, f'{ns}/camera_info', qos)
    width, height = scene.size
    try:
        deadline = time.monotonic() + args.wait_subscriber
        while pub.get_subscription_count() == 0:
            if time.monotonic() > deadline:
                log.error(f'no subscriber on {topic} after {args.wait_subscriber:.0f} s')
                return 1
            rclpy.spin_once(node, timeout_sec=0.1)
        if not args.no_camera_info:  # K before the first image, as a driver would have
            info_pub.publish(camera_info_msg(model, node.get_clock().now().nanoseconds,
                                             args.frame_id))
        time.sleep(0.5)
        lens = (f', raw {model.distortion_model} images' if model.has_distortion else '')
        log.info(f'publishing {scene.num_views} views {width}x{height} on {topic} '
                 f'({args.qos}{lens}) at {args.rate} Hz')
        period = 1.0 / args.rate
        tf = TfSender(node, args) if args.tf_frame else None
        latched = []  # kept alive: late subscribers (transient local) still get the mounting
        if args.extrinsics:
            latched.append(publish_extrinsics(node, args))
        pacer = (EventPacer(node, args.pace_events, args.max_ahead, args.pace_timeout)
                 if args.pace_events else None)
        stamp_log = open(args.stamp_log, 'a') if args.stamp_log else None
        published = 0
        for _ in range(args.loops):
            for view in range(scene.num_views):
                if pacer is not None:
                    pacer.wait(published)
                stamp_ns = node.get_clock().now().nanoseconds
                if stamp_log is not None:
                    stamp_log.write(json.dumps({'view': view, 'stamp_ns': stamp_ns}) + '\n')
                    stamp_log.flush()
                published += 1
                if not args.no_camera_info:
                    info_pub.publish(camera_info_msg(model, stamp_ns, args.frame_id))
                if args.transport == 'raw':
                    msg = rgb_to_image_msg(scene.images[view], stamp_ns, args.frame_id)
                else:
                    msg = rgb_to_compressed_msg(
                        scene.images[view], args.format, stamp_ns=stamp_ns,
                        frame_id=args.frame_id)
                pub.publish(msg)
                if tf is not None:
                    tf.queue(scene.poses_c2w[view], stamp_ns)
                log.info(f'view {view} published')
                end = time.monotonic() + period
                while time.monotonic() < end:
                    if tf is not None:
                        tf.send_due()
                    rclpy.spin_once(node, timeout_sec=min(max(end - time.monotonic(), 0.0),
                                                          0.01))
        if stamp_log is not None:
            stamp_log.close()
        if pacer is not None and pacer.stalls:
            log.warning(f'the node fell behind: {pacer.stalls} view(s) published after '
                        f'waiting {args.pace_timeout:.0f} s for it')
        end = time.monotonic() + max(args.linger, args.tf_latency + 0.5 if tf else 0.0)
        while time.monotonic() < end:
            if tf is not None:
                tf.send_due()
            rclpy.spin_once(node, timeout_sec=0.01)
        return 0
    except KeyboardInterrupt:
        return 130
    finally:
        node.destroy_node()
        rclpy.try_shutdown()


if __name__ == '__main__':
    sys.exit(main())
