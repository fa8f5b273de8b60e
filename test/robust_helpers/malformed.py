# Copyright 2026 The AetherScan ROS Authors
# SPDX-License-Identifier: Apache-2.0
"""
Malformed camera messages, one builder per case of issue 7, and a publisher for them.

Used by ``test/test_robust_input.py`` (this directory is put on ``sys.path``) and runnable on
its own against any running ``aetherscan_node``::

    python test/robust_helpers/malformed.py --case corrupt_jpeg --topic /camera/image_raw
    python test/robust_helpers/malformed.py --list

Every builder returns ``(message, topic_suffix)`` where the suffix is ``''`` (the raw image
topic), ``'/compressed'`` (the CompressedImage topic) or ``'info'`` (the camera_info topic).
"""

import argparse
import io
import sys
import time
from typing import Callable, Dict, Tuple

import numpy as np

W, H = 64, 48
K = np.array([[60.0, 0.0, 32.0], [0.0, 60.0, 24.0], [0.0, 0.0, 1.0]])


def textured(width: int = W, height: int = H, seed: int = 0) -> np.ndarray:
    """Return an ``[H, W, 3]`` uint8 random texture (every frame differs from the last)."""
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def good_image(stamp_ns: int, seed: int = 0, frame_id: str = 'cam', width: int = W,
               height: int = H):
    """Return a valid rgb8 ``sensor_msgs/Image``."""
    from aetherscan_ros.ros.images import rgb_to_image_msg
    return rgb_to_image_msg(textured(width, height, seed), stamp_ns, frame_id)


def good_compressed(stamp_ns: int, seed: int = 0, fmt: str = 'png'):
    """Return a valid ``sensor_msgs/CompressedImage`` (lossless png by default)."""
    from aetherscan_ros.ros.images import rgb_to_compressed_msg
    return rgb_to_compressed_msg(textured(seed=seed), fmt, stamp_ns=stamp_ns, frame_id='cam')


def _raw(stamp_ns: int, **fields):
    msg = good_image(stamp_ns, seed=stamp_ns % 1000)
    for key, value in fields.items():
        setattr(msg, key, value)
    return msg


def _compressed(stamp_ns: int, data: bytes, fmt: str = 'jpeg'):
    from sensor_msgs.msg import CompressedImage

    from aetherscan_ros.ros.stamps import ns_to_stamp
    msg = CompressedImage(format=fmt)
    msg.header.stamp = ns_to_stamp(stamp_ns)
    msg.header.frame_id = 'cam'
    msg.data = data
    return msg


def _encode(rgb: np.ndarray, ext: str) -> bytes:
    import cv2
    ok, buf = cv2.imencode(ext, np.ascontiguousarray(rgb[..., ::-1]))
    assert ok
    return buf.tobytes()


def huge_png(side: int = 10000) -> bytes:
    """Return a valid single-colour ``side`` x ``side`` greyscale PNG (a few hundred KB)."""
    from PIL import Image as PILImage
    buf = io.BytesIO()
    PILImage.new('L', (side, side), 128).save(buf, format='PNG', optimize=False)
    return buf.getvalue()


def _info(k, width=W, height=H):
    from aetherscan_ros.ros.camera_info import make_camera_info
    msg = make_camera_info(np.asarray(K), width, height)
    msg.k = [float(v) for v in np.asarray(k, np.float64).reshape(-1)]
    return msg


def _float_nan(stamp_ns: int):
    depth = np.full((H, W), 1.5, np.float32)
    depth[::3, ::5] = np.nan
    return _raw(stamp_ns, encoding='32FC1', step=W * 4, data=depth.tobytes())


def _stamp_overflow(stamp_ns: int):
    msg = good_image(stamp_ns, seed=9)
    msg.header.stamp.nanosec = 1_500_000_000  # uint32 holds it; Time says < 1e9
    return msg


# name -> (builder(stamp_ns) -> message, topic suffix, what the node must do)
CASES: Dict[str, Tuple[Callable[[int], object], str, str]] = {
    'unknown_encoding': (lambda s: _raw(s, encoding='rgb9000'), '', 'reject'),
    'step_smaller': (lambda s: _raw(s, step=W * 3 - 1), '', 'reject'),
    'step_larger_unpadded_data': (lambda s: _raw(s, step=W * 3 + 16), '', 'reject'),
    'data_shorter': (lambda s: _raw(s, data=bytes(W * 3 * H - 7)), '', 'reject'),
    'data_longer': (lambda s: _raw(s, data=bytes(W * 3 * H + 7)), '', 'reject'),
    'zero_width': (lambda s: _raw(s, width=0, step=0, data=b''), '', 'reject'),
    'zero_height': (lambda s: _raw(s, height=0, data=b''), '', 'reject'),
    'one_by_one': (lambda s: _raw(s, width=1, height=1, step=3, data=b'\x10\x20\x30'), '',
                   'reject'),
    'huge_declared_10000': (lambda s: _raw(s, width=10000, height=10000, step=30000,
                                           data=b''), '', 'reject'),
    'float_with_nan': (_float_nan, '', 'reject'),
    'yuv422_odd_width': (lambda s: _raw(s, encoding='yuv422', width=5, height=4, step=10,
                                        data=bytes(40)), '', 'reject'),
    'stamp_far_future': (lambda s: good_image(time.time_ns() + 86400 * 10 ** 9, seed=7), '',
                         'reject'),
    'stamp_nanosec_overflow': (lambda s: _stamp_overflow(s), '', 'reject'),
    'info_zero_k': (lambda s: _info(np.zeros((3, 3))), 'info', 'ignore_info'),
    'info_nan_k': (lambda s: _info(np.full((3, 3), np.nan)), 'info', 'ignore_info'),
    'corrupt_jpeg_truncated': (lambda s: _compressed(s, _encode(textured(), '.jpg')[:300]),
                               '/compressed', 'reject'),
    'corrupt_jpeg_garbage': (lambda s: _compressed(s, b'\xff\xd8\xff\xe0' + bytes(range(256))),
                             '/compressed', 'reject'),
    'empty_compressed': (lambda s: _compressed(s, b''), '/compressed', 'reject'),
    'not_an_image': (lambda s: _compressed(s, b'GIF89a' + bytes(64), 'gif'), '/compressed',
                     'reject'),
    'one_by_one_png': (lambda s: _compressed(s, _encode(textured(1, 1), '.png'), 'png'),
                       '/compressed', 'reject'),
    'huge_png_10000': (lambda s: _compressed(s, huge_png(), 'png'), '/compressed', 'reject'),
}


def publish_case(case: str, topic: str, count: int = 1, qos: str = 'reliable',
                 wait_s: float = 30.0, linger_s: float = 2.0) -> int:
    """Publish ``count`` messages of ``case`` to ``topic`` (its image topic); return 0 if sent."""
    import rclpy
    from rclpy.qos import qos_profile_sensor_data, QoSProfile
    from sensor_msgs.msg import CameraInfo, CompressedImage, Image

    from aetherscan_ros.node.params import default_camera_info_topic

    build, suffix, _ = CASES[case]
    if suffix == 'info':
        msg_type, target = CameraInfo, default_camera_info_topic(topic)
    elif suffix:
        msg_type, target = CompressedImage, topic.rstrip('/') + suffix
    else:
        msg_type, target = Image, topic
    rclpy.init()
    node = rclpy.create_node('aetherscan_malformed_publisher')
    profile = qos_profile_sensor_data if qos == 'best_effort' else QoSProfile(depth=10)
    pub = node.create_publisher(msg_type, target, profile)
    try:
        end = time.monotonic() + wait_s
        # the graph count: a subscription with incompatible QoS is there but never matches
        while node.count_subscribers(target) == 0:
            if time.monotonic() > end:
                print(f'no subscriber on {target} after {wait_s:.0f} s', file=sys.stderr)
                return 1
            rclpy.spin_once(node, timeout_sec=0.1)
        for _ in range(count):
            pub.publish(build(node.get_clock().now().nanoseconds))
            rclpy.spin_once(node, timeout_sec=0.05)
        end = time.monotonic() + linger_s  # let delivery (and QoS events) finish; stay visible
        while time.monotonic() < end:
            rclpy.spin_once(node, timeout_sec=0.1)
        print(f'published {count} x {case} on {target} ({qos})')
        return 0
    finally:
        node.destroy_node()
        rclpy.try_shutdown()


def main(argv=None) -> int:
    """Command line: publish one malformed case to a running node."""
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument('--case', choices=sorted(CASES))
    parser.add_argument('--topic', default='/camera/image_raw', help='the raw image topic')
    parser.add_argument('--count', type=int, default=1)
    parser.add_argument('--qos', choices=('reliable', 'best_effort'), default='reliable')
    parser.add_argument('--linger', type=float, default=2.0,
                        help='seconds to stay in the graph after publishing')
    parser.add_argument('--list', action='store_true', help='list the cases and exit')
    args = parser.parse_args(argv)
    if args.list or not args.case:
        for name, (_, suffix, outcome) in sorted(CASES.items()):
            print(f'{name:28s} {suffix or "image":12s} expected: {outcome}')
        return 0
    return publish_case(args.case, args.topic, args.count, args.qos, linger_s=args.linger)


if __name__ == '__main__':
    sys.exit(main())
