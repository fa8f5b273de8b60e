# Copyright 2026 The AetherScan ROS Authors
# SPDX-License-Identifier: Apache-2.0
"""
Publish the demo scene as a camera stream: images plus camera_info, like a camera driver.

``python -m aetherscan_ros.demo.publisher [--transport raw|compressed] [--qos reliable|best_effort]
[--rate HZ] [--num-views N] [--width W --height H] [--scene-dir DIR]``

Topics (under ``--namespace``, default ``/camera``): ``image_raw`` (sensor_msgs/Image rgb8),
``image_raw/compressed`` (sensor_msgs/CompressedImage jpeg/png), ``camera_info``. Each view is
published once (``--loops`` repeats the sequence), stamped with the publisher's clock, at
``--rate`` views per second, after a subscriber to the image topic has appeared (so no view is
published into the void). camera_info is published with every image. Exits 0 when done.
"""

import argparse
import sys
import time

import rclpy
from rclpy.node import Node
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CameraInfo, CompressedImage, Image

from aetherscan_ros.ros.camera_info import make_camera_info
from aetherscan_ros.ros.images import rgb_to_compressed_msg, rgb_to_image_msg

FRAME_ID = 'demo_camera_optical_frame'


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
    parser.add_argument('--scene-dir', default='',
                        help='load a scene written by write_scene instead of rendering one')
    parser.add_argument('--loops', type=int, default=1, help='times to publish the sequence')
    parser.add_argument('--no-camera-info', action='store_true')
    parser.add_argument('--wait-subscriber', type=float, default=60.0,
                        help='seconds to wait for a subscriber before giving up')
    parser.add_argument('--linger', type=float, default=1.0,
                        help='seconds to stay alive after the last view (reliable delivery)')
    return parser.parse_args(argv)


def load_demo_scene(args):
    """Return the scene to publish (rendered, or loaded from ``--scene-dir``)."""
    from aetherscan_ros.demo.scene import load_scene, make_scene
    if args.scene_dir:
        return load_scene(args.scene_dir)
    return make_scene(num_views=args.num_views, width=args.width, height=args.height,
                      seed=args.seed, path=args.path)


def main(argv=None):
    """Publish the scene; return the process exit code."""
    args = parse_args(argv)
    scene = load_demo_scene(args)
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
            info_pub.publish(make_camera_info(
                scene.K, width, height, node.get_clock().now().nanoseconds, FRAME_ID))
        time.sleep(0.5)
        log.info(f'publishing {scene.num_views} views {width}x{height} on {topic} '
                 f'({args.qos}) at {args.rate} Hz')
        period = 1.0 / args.rate
        for _ in range(args.loops):
            for view in range(scene.num_views):
                stamp_ns = node.get_clock().now().nanoseconds
                if not args.no_camera_info:
                    info_pub.publish(make_camera_info(
                        scene.K, width, height, stamp_ns, FRAME_ID))
                if args.transport == 'raw':
                    msg = rgb_to_image_msg(scene.images[view], stamp_ns, FRAME_ID)
                else:
                    msg = rgb_to_compressed_msg(
                        scene.images[view], args.format, stamp_ns=stamp_ns, frame_id=FRAME_ID)
                pub.publish(msg)
                log.info(f'view {view} published')
                end = time.monotonic() + period
                while time.monotonic() < end:
                    rclpy.spin_once(node, timeout_sec=max(end - time.monotonic(), 0.0))
        end = time.monotonic() + args.linger
        while time.monotonic() < end:
            rclpy.spin_once(node, timeout_sec=0.1)
        return 0
    except KeyboardInterrupt:
        return 130
    finally:
        node.destroy_node()
        rclpy.try_shutdown()


if __name__ == '__main__':
    sys.exit(main())
