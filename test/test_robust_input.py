# Copyright 2026 The AetherScan ROS Authors
# SPDX-License-Identifier: Apache-2.0
"""
Issue 7, malformed input: each case published cross-process to a running aetherscan_node.

For every case the node must log one clear line naming the topic and the reason (throttled
when repeated), count it in /diagnostics, keep running, accept the next good frame and keep
the good frames it had buffered. The cases come from ``test/robust_helpers/malformed.py``.
"""

from pathlib import Path
import sys

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent / 'robust_helpers'))
import malformed  # noqa: E402,I100 - test/robust_helpers is put on sys.path just above
from rig import NodeRig  # noqa: E402

pytestmark = pytest.mark.ros

CAM0, CAM1 = '/rcam0/image_raw', '/rcam1/image_raw'
COUNTERS = ('invalid_frames', 'camera_info_rejected', 'stamp_backwards', 'stamp_future',
            'frame_id_changes', 'size_changes', 'camera_size_mismatches', 'buffered',
            'callback_errors')

# case -> (counter that must grow by one, text the log line must contain)
RAW_CASES = [
    ('unknown_encoding', 'invalid_frames', f"{CAM0}: rejected: unsupported encoding 'rgb9000'"),
    ('step_smaller', 'invalid_frames', f'{CAM0}: rejected: step 191 is smaller than'),
    ('step_larger_unpadded_data', 'invalid_frames',
     f'{CAM0}: rejected: data has 9216 bytes, expected step*height = 208*48'),
    ('data_shorter', 'invalid_frames', f'{CAM0}: rejected: data has'),
    ('data_longer', 'invalid_frames', f'{CAM0}: rejected: data has'),
    ('zero_width', 'invalid_frames', f'{CAM0}: rejected: empty image (0x48)'),
    ('zero_height', 'invalid_frames', f'{CAM0}: rejected: empty image'),
    ('one_by_one', 'invalid_frames', f'{CAM0}: rejected: image too small (1x1)'),
    ('huge_declared_10000', 'invalid_frames',
     f'{CAM0}: rejected: image 10000x10000 exceeds max_image_side=4096'),
    ('float_with_nan', 'invalid_frames',
     f"{CAM0}: rejected: unsupported encoding '32FC1' (a float/integer image is a depth"),
    ('yuv422_odd_width', 'invalid_frames', f'{CAM0}: rejected: yuv422 needs an even width'),
    ('stamp_far_future', 'stamp_future', f'{CAM0}: rejected: header stamp is'),
    ('stamp_nanosec_overflow', 'invalid_frames',
     f'{CAM0}: rejected: header stamp nanosec 1500000000 is out of range (must be < '
     '1000000000)'),
    ('info_zero_k', 'camera_info_rejected',
     '/rcam0/camera_info: ignored: K has non-positive focal lengths'),
    ('info_nan_k', 'camera_info_rejected', '/rcam0/camera_info: ignored: K contains NaN'),
]

COMPRESSED_CASES = [
    ('corrupt_jpeg_truncated', 'corrupt'),
    ('corrupt_jpeg_garbage', 'corrupt'),
    ('empty_compressed', "empty compressed image (format 'jpeg')"),
    ('not_an_image', 'data is neither JPEG nor PNG'),
    ('one_by_one_png', 'image too small (1x1)'),
    ('huge_png_10000', 'image 10000x10000 exceeds max_image_side=4096'),
]


@pytest.fixture
def rig(ros, tmp_path):
    """Yield a :class:`NodeRig`; stop its node afterwards."""
    rig = NodeRig(tmp_path)
    yield rig
    rig.close()


class Feeder:
    """Publishers on the node's topics and a monotonically increasing stamp."""

    def __init__(self, rig, compressed=False):
        from rclpy.qos import QoSProfile
        from sensor_msgs.msg import CameraInfo, CompressedImage, Image
        self.rig = rig
        node = rig.monitor.node
        qos = QoSProfile(depth=100)
        self.stamp = 1_700_000_000 * 10 ** 9
        self.seed = 0
        self.good_sent = 0
        if compressed:
            self.pubs = {'/compressed': node.create_publisher(
                CompressedImage, CAM0 + '/compressed', qos)}
        else:
            self.pubs = {'': node.create_publisher(Image, CAM0, qos),
                         'info': node.create_publisher(CameraInfo, '/rcam0/camera_info', qos),
                         'cam1': node.create_publisher(Image, CAM1, qos)}

    def wait_matched(self):
        monitor = self.rig.monitor
        for pub in self.pubs.values():
            assert monitor.spin_until(lambda p=pub: p.get_subscription_count() > 0, 30.0)
        monitor.spin_for(0.5)

    def next_stamp(self):
        self.stamp += 50_000_000
        return self.stamp

    def publish(self, suffix, msg):
        self.pubs[suffix].publish(msg)

    def good(self, suffix='', **kwargs):
        self.seed += 1
        if suffix == '/compressed':
            msg = malformed.good_compressed(self.next_stamp(), seed=self.seed)
        else:
            msg = malformed.good_image(self.next_stamp(), seed=self.seed, **kwargs)
        self.publish(suffix, msg)
        self.good_sent += 1
        return msg

    def wait_counters(self, want, timeout=20.0):
        rig = self.rig

        def reached():
            got = rig.counters(want)
            return all(got[k] >= v for k, v in want.items())

        ok = rig.monitor.spin_until(reached, timeout)
        return ok, rig.counters(want)


def _log_lines(log, text):
    return [line for line in log.splitlines() if text in line]


def test_malformed_raw_images_and_camera_info(rig):
    """Every raw-image and camera_info case: one line, counted, node alive, good frames kept."""
    from aetherscan_ros.ros.camera_info import make_camera_info
    proc = rig.node(backend='classical', image_topics=[CAM0, CAM1], auto_trigger=False,
                    min_views=2, max_views=64, keyframe_min_interval=0.0,
                    keyframe_min_change=0.0, diagnostics_period=0.2, no_frames_warning=0.0)
    feed = Feeder(rig)
    assert rig.monitor.wait_for_node(60.0), rig.log()
    feed.wait_matched()
    feed.publish('info', make_camera_info(malformed.K, malformed.W, malformed.H))
    rig.monitor.spin_for(0.3)
    feed.good()
    ok, base = feed.wait_counters({'buffered': 1})
    assert ok, (base, rig.log())

    outcomes = {}
    for case, counter, text in RAW_CASES:
        before = rig.counters(COUNTERS)
        build, suffix, _ = malformed.CASES[case]
        feed.publish(suffix, build(feed.next_stamp()))
        feed.good()  # a later good frame is still accepted
        want = {counter: before[counter] + 1, 'buffered': before['buffered'] + 1}
        ok, got = feed.wait_counters(want)
        assert ok, (case, want, got, rig.log()[-3000:])
        assert rig.wait_log(text), (case, text, rig.log()[-3000:])
        assert proc.poll() is None, (case, rig.log())
        outcomes[case] = text
    if_nan_info_kept = rig.counters(['camera_info_rejected'])
    assert if_nan_info_kept['camera_info_rejected'] == 2

    # good frames after the bad camera_info still carry the last good K
    received = [e for e in rig.monitor.events if e['event'] == 'image_received']
    assert received and received[-1]['has_k'] is True

    # camera_info for another size: K not used for this image (counted), image still accepted
    before = rig.counters(COUNTERS)
    feed.publish('info', make_camera_info(malformed.K, 640, 480))
    rig.monitor.spin_for(0.3)
    feed.good()
    ok, got = feed.wait_counters({'camera_info_rejected': before['camera_info_rejected'] + 1,
                                  'buffered': before['buffered'] + 1})
    assert ok, (got, rig.log()[-2000:])
    assert rig.wait_log('/rcam0/camera_info: K not used: camera_info is for 640x480 but the '
                        'image is 64x48')
    assert rig.monitor.spin_until(
        lambda: [e['has_k'] for e in rig.monitor.events
                 if e['event'] == 'image_received'][-1] is False, 10.0)
    feed.publish('info', make_camera_info(malformed.K, malformed.W, malformed.H))

    # stamps going backwards: skipped, counted; the camera's history restarts
    before = rig.counters(COUNTERS)
    msg = malformed.good_image(feed.stamp - 10 ** 9, seed=999)
    feed.publish('', msg)
    feed.good()
    ok, got = feed.wait_counters({'stamp_backwards': before['stamp_backwards'] + 1,
                                  'buffered': before['buffered'] + 1})
    assert ok, (got, rig.log()[-2000:])
    assert rig.wait_log(f'{CAM0}: header stamp went backwards')

    # frame_id change mid-stream: accepted, counted, logged
    before = rig.counters(COUNTERS)
    feed.good(frame_id='other_optical')
    ok, got = feed.wait_counters({'frame_id_changes': before['frame_id_changes'] + 1,
                                  'buffered': before['buffered'] + 1})
    assert ok, got
    assert rig.wait_log(f"{CAM0}: frame_id changed from 'cam' to 'other_optical'")

    # mismatched sizes across cameras (accepted: the backends take mixed sizes) and a size
    # change within one camera
    before = rig.counters(COUNTERS)
    feed.good('cam1', width=80, height=60)
    ok, got = feed.wait_counters({'camera_size_mismatches': 1,
                                  'buffered': before['buffered'] + 1})
    assert ok, got
    assert rig.wait_log(f'{CAM1}: image size 80x60 differs from {CAM0} (64x48)')
    feed.good('', width=96, height=72, frame_id='other_optical')
    ok, got = feed.wait_counters({'size_changes': 1, 'buffered': before['buffered'] + 2})
    assert ok, got
    assert rig.wait_log(f'{CAM0}: image size changed from 64x48 to 96x72')

    # a valid padded row stride (step > width * 3) is not malformed: accepted
    before = rig.counters(COUNTERS)
    rgb = malformed.textured(seed=4242)
    padded = np.zeros((malformed.H, malformed.W * 3 + 16), np.uint8)
    padded[:, :malformed.W * 3] = rgb.reshape(malformed.H, -1)
    msg = malformed.good_image(feed.next_stamp(), frame_id='other_optical')
    msg.step, msg.data = malformed.W * 3 + 16, padded.tobytes()
    feed.publish('', msg)
    feed.good_sent += 1
    ok, _ = feed.wait_counters({'buffered': before['buffered'] + 1})
    got = rig.counters(COUNTERS)
    assert ok and got['invalid_frames'] == before['invalid_frames'], got

    # repeated bad frames: every one counted, one log line per reason while throttled
    before = rig.counters(COUNTERS)
    for _ in range(30):  # paced: the node's reliable image subscription keeps the last 5
        feed.publish('', malformed.CASES['unknown_encoding'][0](feed.next_stamp()))
        rig.monitor.spin_for(0.03)
    feed.good()
    ok, got = feed.wait_counters({'invalid_frames': before['invalid_frames'] + 30,
                                  'buffered': before['buffered'] + 1})
    assert ok, got
    lines = _log_lines(rig.log(), "unsupported encoding 'rgb9000'")
    assert len(lines) <= 2, lines  # the first case's line, at most one more after 5 s

    # every good frame is still buffered, nothing crashed, nothing unexpected happened
    final = rig.counters(COUNTERS)
    assert final['buffered'] == feed.good_sent, (final, feed.good_sent)
    assert final['callback_errors'] == 0
    assert proc.poll() is None
    assert 'Traceback' not in rig.log()
    per_topic = rig.diag_int(f'{CAM0} rejected')
    assert per_topic == final['invalid_frames'] + final['stamp_future']


def test_malformed_compressed_images(rig):
    """Corrupt, empty, non-image, 1x1 and 10000x10000 CompressedImage: rejected cheaply."""
    import psutil
    proc = rig.node(backend='classical', image_topics=[CAM0], image_transport='compressed',
                    auto_trigger=False, min_views=2, keyframe_min_interval=0.0,
                    keyframe_min_change=0.0, diagnostics_period=0.2, no_frames_warning=0.0,
                    use_camera_info=False)
    feed = Feeder(rig, compressed=True)
    assert rig.monitor.wait_for_node(60.0), rig.log()
    feed.wait_matched()
    feed.good('/compressed')
    ok, _ = feed.wait_counters({'buffered': 1})
    assert ok, rig.log()
    rss_before = psutil.Process(proc.pid).memory_info().rss
    for case, text in COMPRESSED_CASES:
        before = rig.counters(COUNTERS)
        build, suffix, _ = malformed.CASES[case]
        feed.publish(suffix, build(feed.next_stamp()))
        feed.good('/compressed')
        ok, got = feed.wait_counters({'invalid_frames': before['invalid_frames'] + 1,
                                      'buffered': before['buffered'] + 1})
        assert ok, (case, got, rig.log()[-2000:])
        assert rig.wait_log(f'{CAM0}/compressed: rejected: ') and rig.wait_log(text), \
            (case, text, rig.log()[-2000:])
        assert proc.poll() is None
    # the 10000x10000 PNG was refused from its header: never decoded (300 MB as RGB)
    grown = psutil.Process(proc.pid).memory_info().rss - rss_before
    assert grown < 100 * 2 ** 20, f'node RSS grew by {grown / 2 ** 20:.0f} MiB'
    assert rig.diag_int('buffered') == feed.good_sent
    assert rig.diag_int('callback_errors') == 0 and 'Traceback' not in rig.log()
