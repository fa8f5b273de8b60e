# Copyright 2026 The AetherScan ROS Authors
# SPDX-License-Identifier: Apache-2.0
"""
Publisher side of the cross-process smoke test (run as its own process by test_ros_smoke.py).

Publishes one ``/tf_static`` message (transient local) at start, then prints ``READY`` and
keeps publishing ``sensor_msgs/Image``, ``sensor_msgs/PointCloud2`` and ``/tf`` at 10 Hz, and
serves ``std_srvs/Trigger`` on ``smoke/trigger``. The payloads follow ``smoke_payloads`` so the
other process can check them byte for byte. Exits by itself after ``--lifetime`` seconds.
"""

import argparse
import os
import time

import rclpy
from rclpy.executors import ExternalShutdownException
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import Image, PointCloud2
import smoke_payloads  # test/ros_helpers is on PYTHONPATH
from std_srvs.srv import Trigger
from tf2_msgs.msg import TFMessage


def main():
    """Run the publisher until killed or ``--lifetime`` seconds have passed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument('--lifetime', type=float, default=60.0)
    args = parser.parse_args()

    rclpy.init()
    node = rclpy.create_node('aetherscan_smoke_publisher')
    reliable = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
    static_qos = QoSProfile(depth=1, history=HistoryPolicy.KEEP_LAST,
                            reliability=ReliabilityPolicy.RELIABLE,
                            durability=DurabilityPolicy.TRANSIENT_LOCAL)
    image_pub = node.create_publisher(Image, 'smoke/image', reliable)
    cloud_pub = node.create_publisher(PointCloud2, 'smoke/points', reliable)
    tf_pub = node.create_publisher(TFMessage, '/tf', reliable)
    static_pub = node.create_publisher(TFMessage, '/tf_static', static_qos)
    calls = [0]

    def on_trigger(request, response):
        calls[0] += 1
        response.success = True
        response.message = f'triggered #{calls[0]} by pid {os.getpid()}'
        return response

    node.create_service(Trigger, 'smoke/trigger', on_trigger)
    static_pub.publish(smoke_payloads.make_static_tf(node.get_clock().now().to_msg()))
    seq = [0]

    def tick():
        stamp = node.get_clock().now().to_msg()
        image_pub.publish(smoke_payloads.make_image(seq[0], stamp))
        cloud_pub.publish(smoke_payloads.make_cloud(seq[0], stamp))
        tf_pub.publish(smoke_payloads.make_tf(seq[0], stamp))
        seq[0] += 1

    node.create_timer(0.1, tick)
    print('READY', flush=True)
    deadline = time.monotonic() + args.lifetime
    try:
        while rclpy.ok() and time.monotonic() < deadline:
            rclpy.spin_once(node, timeout_sec=0.1)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        node.destroy_node()
        rclpy.try_shutdown()


if __name__ == '__main__':
    main()
