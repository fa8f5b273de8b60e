# Copyright 2026 The AetherScan ROS Authors
# SPDX-License-Identifier: Apache-2.0
"""
Subscriber side of the cross-process smoke test (run as its own process by test_ros_smoke.py).

Joins after the publisher process has sent its single ``/tf_static`` message (a late joiner),
subscribes to the image, cloud and ``/tf`` topics, calls the ``smoke/trigger`` service and
checks every payload against ``smoke_payloads``. Prints one JSON report on stdout and exits 0
once everything arrived, 1 at the deadline.
"""

import argparse
import json
import os
import time

import numpy as np
import rclpy
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import Image, PointCloud2
import smoke_payloads  # test/ros_helpers is on PYTHONPATH
from std_srvs.srv import Trigger
from tf2_msgs.msg import TFMessage


def main():
    """Collect the messages and the service reply, print the JSON report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument('--count', type=int, default=3, help='messages wanted per topic')
    parser.add_argument('--timeout', type=float, default=30.0)
    args = parser.parse_args()

    rclpy.init()
    node = rclpy.create_node('aetherscan_smoke_subscriber')
    reliable = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
    static_qos = QoSProfile(depth=1, history=HistoryPolicy.KEEP_LAST,
                            reliability=ReliabilityPolicy.RELIABLE,
                            durability=DurabilityPolicy.TRANSIENT_LOCAL)
    report = {'pid': os.getpid(), 'image': 0, 'points': 0, 'tf': 0, 'tf_static': [],
              'errors': [], 'trigger': None, 'type_hashes': {}}

    def error(text):
        if len(report['errors']) < 20:
            report['errors'].append(text)

    def on_image(msg):
        seq = _seq_from_image(msg) if msg.header.frame_id == 'smoke_camera' else None
        if seq is None:
            error(f'image: unexpected header/encoding/size: {msg.header.frame_id} '
                  f'{msg.encoding} {msg.width}x{msg.height} step {msg.step}')
            return
        if bytes(msg.data) != smoke_payloads.image_pixels(seq).tobytes():
            error(f'image {seq}: pixels differ from what was sent')
            return
        report['image'] += 1

    def on_points(msg):
        fields = [(f.name, f.offset, f.datatype, f.count) for f in msg.fields]
        want = [(n, 4 * i, 7, 1) for i, n in enumerate(('x', 'y', 'z', 'rgb'))]
        if fields != want or msg.point_step != 16 or msg.height != 1:
            error(f'points: unexpected layout {fields} step {msg.point_step}')
            return
        rows = np.frombuffer(bytes(msg.data), dtype=np.float32).reshape(-1, 4)
        seq = _find_cloud_seq(rows)
        if seq is None:
            error(f'points: {rows.shape[0]} points match no sent cloud')
            return
        report['points'] += 1

    def on_tf(msg):
        t = msg.transforms[0]
        if (t.header.frame_id, t.child_frame_id) != ('map', 'smoke_camera'):
            error(f'tf: unexpected frames {t.header.frame_id} -> {t.child_frame_id}')
            return
        report['tf'] += 1

    def on_static(msg):
        report['tf_static'] += [
            [t.header.frame_id, t.child_frame_id, t.transform.translation.x]
            for t in msg.transforms]

    node.create_subscription(Image, 'smoke/image', on_image, reliable)
    node.create_subscription(PointCloud2, 'smoke/points', on_points, reliable)
    node.create_subscription(TFMessage, '/tf', on_tf, reliable)
    node.create_subscription(TFMessage, '/tf_static', on_static, static_qos)
    client = node.create_client(Trigger, 'smoke/trigger')
    future = None

    def done():
        return (min(report['image'], report['points'], report['tf']) >= args.count
                and report['tf_static'] and report['trigger'] is not None)

    deadline = time.monotonic() + args.timeout
    while time.monotonic() < deadline and not done():
        rclpy.spin_once(node, timeout_sec=0.05)
        if future is None and client.service_is_ready():
            future = client.call_async(Trigger.Request())
        if future is not None and future.done() and report['trigger'] is None:
            reply = future.result()
            report['trigger'] = {'success': reply.success, 'message': reply.message}
    for topic in ('/tf', '/tf_static', 'smoke/image', 'smoke/points'):
        infos = node.get_publishers_info_by_topic(topic)
        if infos:
            report['type_hashes'][topic] = str(infos[0].topic_type_hash)
    report['ok'] = bool(done()) and not report['errors']
    print(json.dumps(report), flush=True)
    node.destroy_node()
    rclpy.try_shutdown()
    raise SystemExit(0 if report['ok'] else 1)


def _seq_from_image(msg):
    """Return the sequence number encoded in an image's first pixel, or None."""
    h, w = smoke_payloads.IMAGE_SIZE
    if (msg.encoding, msg.height, msg.width, msg.step) != ('rgb8', h, w, w * 3):
        return None
    first = bytes(msg.data[:1])
    # pixel (0, 0) red = seq % 256; smoke runs are far shorter than 256 frames.
    return first[0] if first else None


def _find_cloud_seq(rows, search=512):
    """Return the sequence number whose cloud equals ``rows`` ``[N, 4]``, or None."""
    for seq in range(search):
        if np.array_equal(rows.view(np.uint32),
                          smoke_payloads.cloud_points(seq).view(np.uint32)):
            return seq
    return None


if __name__ == '__main__':
    main()
