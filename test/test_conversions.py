# Copyright 2026 The AetherScan ROS Authors
# SPDX-License-Identifier: Apache-2.0
"""Image/CompressedImage/CameraInfo decoding against hand-built messages, and output builders."""

import json

import cv2
from geometry_msgs.msg import TransformStamped
import numpy as np
import pytest
from rclpy.serialization import deserialize_message, serialize_message
from sensor_msgs.msg import CameraInfo, CompressedImage, Image

from aetherscan_ros.core.geometry import rotation_angle_deg
from aetherscan_ros.ros.camera_info import (
    camera_info_to_k, camera_info_to_model, make_camera_info, model_for_image)
from aetherscan_ros.ros.errors import ConversionError
from aetherscan_ros.ros.events import event_msg, parse_event
from aetherscan_ros.ros.images import compressed_to_rgb, image_to_rgb, rgb_to_compressed_msg
from aetherscan_ros.ros.markers import frusta_markers
from aetherscan_ros.ros.stamps import checked_stamp_ns
from aetherscan_ros.ros.tf import poses_to_pose_array, poses_to_transforms, transform_to_matrix

H, W = 5, 7


def _rgb():
    rng = np.random.default_rng(3)
    return rng.integers(0, 256, (H, W, 3), dtype=np.uint8)


def _image(pixels: np.ndarray, encoding: str, pad: int = 0, bigendian: bool = False):
    """Hand-build an Image: rows of raw bytes plus ``pad`` junk bytes per row."""
    pixels = np.ascontiguousarray(pixels)
    if pixels.dtype == np.uint16:
        pixels = pixels.astype('>u2' if bigendian else '<u2')
    rows = pixels.reshape(pixels.shape[0], -1).view(np.uint8)
    junk = np.full((rows.shape[0], pad), 0xAB, np.uint8)
    data = np.concatenate([rows, junk], axis=1)
    msg = Image(height=pixels.shape[0], width=pixels.shape[1], encoding=encoding,
                is_bigendian=int(bigendian), step=data.shape[1])
    msg.data = data.tobytes()
    # what a subscriber really receives: a CDR round trip
    return deserialize_message(serialize_message(msg), Image)


@pytest.mark.parametrize('pad', [0, 3])
def test_color_encodings(pad):
    rgb = _rgb()
    alpha = np.full((H, W, 1), 77, np.uint8)
    cases = {
        'rgb8': rgb, 'bgr8': rgb[..., ::-1], 'rgba8': np.concatenate([rgb, alpha], 2),
        'bgra8': np.concatenate([rgb[..., ::-1], alpha], 2),
    }
    for encoding, pixels in cases.items():
        out = image_to_rgb(_image(pixels, encoding, pad))
        assert out.dtype == np.uint8 and out.shape == (H, W, 3), encoding
        assert np.array_equal(out, rgb), encoding


@pytest.mark.parametrize('bigendian', [False, True])
def test_mono_encodings(bigendian):
    grey = _rgb()[..., 0]
    out = image_to_rgb(_image(grey, 'mono8', pad=1))
    assert np.array_equal(out, np.repeat(grey[..., None], 3, 2))
    grey16 = (np.arange(H * W, dtype=np.uint32).reshape(H, W) * 1500).astype(np.uint16)
    grey16[0, 0], grey16[0, 1] = 65535, 257
    out16 = image_to_rgb(_image(grey16, 'mono16', pad=2, bigendian=bigendian))
    expect = np.round(grey16 * (255.0 / 65535.0)).astype(np.uint8)
    assert np.array_equal(out16[..., 0], expect)
    assert out16[0, 0, 0] == 255 and out16[0, 1, 0] == 1
    assert np.array_equal(out16[..., 0], out16[..., 2])


def test_rgb16_and_yuv422():
    rgb = _rgb()
    rgb16 = rgb.astype(np.uint16) * 257
    assert np.array_equal(image_to_rgb(_image(rgb16, 'rgb16')), rgb)
    # UYVY of a flat grey image (Y=U=V=128 -> about 128 grey)
    uyvy = np.full((4, 6, 2), 128, np.uint8)
    out = image_to_rgb(_image(uyvy, 'yuv422'))
    assert out.shape == (4, 6, 3) and np.all(np.abs(out.astype(int) - 130) <= 3)


@pytest.mark.parametrize('mutate, reason', [
    (lambda m: setattr(m, 'encoding', '32FC1'), 'unsupported encoding'),
    (lambda m: setattr(m, 'step', W * 3 - 1), 'smaller than width'),
    (lambda m: setattr(m, 'data', bytes(m.data)[:-1]), 'expected step\\*height'),
    (lambda m: setattr(m, 'data', bytes(m.data) + b'x'), 'expected step\\*height'),
    (lambda m: (setattr(m, 'width', 0)), 'empty image'),
    (lambda m: (setattr(m, 'height', 1), setattr(m, 'width', 1)), 'too small'),
])
def test_bad_images_are_rejected_with_reason(mutate, reason):
    msg = _image(_rgb(), 'rgb8')
    mutate(msg)
    with pytest.raises(ConversionError, match=reason):
        image_to_rgb(msg)


def test_oversized_image_rejected_before_copy():
    msg = Image(height=20000, width=20000, encoding='rgb8', step=60000)
    with pytest.raises(ConversionError, match='max_image_side'):
        image_to_rgb(msg, max_side=4096)


def _compressed(data: bytes, fmt: str):
    msg = CompressedImage(format=fmt)
    msg.data = data
    return deserialize_message(serialize_message(msg), CompressedImage)


def test_compressed_png_is_lossless_and_jpeg_close():
    rgb = np.ascontiguousarray(np.kron(_rgb(), np.ones((8, 8, 1), np.uint8)))  # 40x56
    ok, png = cv2.imencode('.png', rgb[..., ::-1])
    assert ok
    out = compressed_to_rgb(_compressed(png.tobytes(), 'png'))
    assert np.array_equal(out, rgb)
    ok, jpg = cv2.imencode('.jpg', rgb[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 98])
    out = compressed_to_rgb(_compressed(jpg.tobytes(), 'rgb8; jpeg compressed bgr8'))
    assert out.shape == rgb.shape
    assert np.abs(out.astype(int) - rgb.astype(int)).mean() < 12
    # grey and 16-bit PNGs too
    ok, png16 = cv2.imencode('.png', np.full((4, 4), 65535, np.uint16))
    out = compressed_to_rgb(_compressed(png16.tobytes(), 'png'))
    assert np.all(out == 255)
    # the publisher-side helper produces what the decoder reads back
    msg = rgb_to_compressed_msg(rgb, 'png', stamp_ns=5, frame_id='cam')
    assert msg.header.frame_id == 'cam' and msg.header.stamp.nanosec == 5
    assert np.array_equal(compressed_to_rgb(msg), rgb)


@pytest.mark.parametrize('data, fmt, reason', [
    (b'', 'jpeg', 'empty compressed image'),
    (b'GIF89a....', 'jpeg', 'neither JPEG nor PNG'),
    (b'\xff\xd8\xff\xe0' + b'\x00' * 40, 'jpeg', 'corrupt'),
    (b'\x89PNG\r\n\x1a\n' + b'\x00' * 5, 'png', 'corrupt'),
    (b'\x89PNG\r\n\x1a\n', 'png; compressedDepth', 'depth transport'),
])
def test_bad_compressed_rejected(data, fmt, reason):
    with pytest.raises(ConversionError, match=reason):
        compressed_to_rgb(_compressed(data, fmt))


def test_compressed_oversize_rejected_from_header():
    ok, png = cv2.imencode('.png', np.zeros((600, 10, 3), np.uint8))
    with pytest.raises(ConversionError, match='max_image_side=512'):
        compressed_to_rgb(_compressed(png.tobytes(), 'png'), max_side=512)


def test_camera_info():
    k = np.array([[500.0, 0, 320], [0, 510.0, 240], [0, 0, 1]])
    msg = make_camera_info(k, 640, 480, frame_id='cam')
    msg = deserialize_message(serialize_message(msg), CameraInfo)
    got, size = camera_info_to_k(msg)
    assert np.array_equal(got, k) and size == (640, 480)
    model = camera_info_to_model(msg)
    assert model_for_image(model, (640, 480), False) is model
    unsized = camera_info_to_model(make_camera_info(k, 0, 0))  # width/height left 0
    assert np.array_equal(model_for_image(unsized, (320, 240), False).K_eff, k)
    with pytest.raises(ConversionError, match='camera_info is for 640x480'):
        model_for_image(model, (320, 240), False)
    for bad, reason in ((np.zeros(9), 'non-positive'), (np.full(9, np.nan), 'NaN'),
                        (np.eye(3).ravel() * 2, 'pinhole')):
        msg.k = [float(v) for v in bad]
        with pytest.raises(ConversionError, match=reason):
            camera_info_to_k(msg)


def test_transforms_pose_array_and_markers():
    angle = np.radians(30)
    pose = np.eye(4)
    pose[:3, :3] = [[np.cos(angle), 0, np.sin(angle)], [0, 1, 0],
                    [-np.sin(angle), 0, np.cos(angle)]]
    pose[:3, 3] = [1.0, -2.0, 0.5]
    poses = np.stack([np.eye(4), pose])
    tfs = poses_to_transforms(poses, 'world', 'rig_', 3_000_000_123)
    assert [t.child_frame_id for t in tfs] == ['rig_camera_0_optical', 'rig_camera_1_optical']
    assert all(t.header.frame_id == 'world' for t in tfs)
    assert tfs[1].header.stamp.sec == 3 and tfs[1].header.stamp.nanosec == 123
    back = transform_to_matrix(
        deserialize_message(serialize_message(tfs[1]), TransformStamped))
    assert np.allclose(back[:3, 3], pose[:3, 3])
    assert rotation_angle_deg(back[:3, :3], pose[:3, :3]) < 1e-6
    arr = poses_to_pose_array(poses, 'world', 0)
    assert len(arr.poses) == 2 and arr.poses[1].position.x == 1.0
    k = np.array([[100.0, 0, 50], [0, 100.0, 40], [0, 0, 1]])
    markers = frusta_markers(poses, np.stack([k, k]), np.array([[100, 80]] * 2),
                             'world', 0, depth=2.0)
    assert markers.markers[0].action == markers.markers[0].DELETEALL
    lines = markers.markers[1:]
    assert len(lines) == 2 and all(len(m.points) == 16 for m in lines)
    # view 0 frustum: apex at the origin, image corner (0, 0) at depth 2 -> (-1, -0.8, 2)
    assert lines[0].points[0].x == 0.0
    assert (lines[0].points[1].x, lines[0].points[1].y, lines[0].points[1].z) == \
        pytest.approx((-1.0, -0.8, 2.0))


def test_event_json():
    msg = event_msg('reconstruction_complete', total_points=np.int64(5),
                    seconds=float('nan'), views=[1, 2])
    assert json.loads(msg.data) == {'event': 'reconstruction_complete', 'total_points': 5,
                                    'seconds': None, 'views': [1, 2]}
    assert parse_event(msg)['total_points'] == 5


def test_unposed_views_are_left_out():
    poses = np.stack([np.eye(4), np.full((4, 4), np.nan), np.eye(4)])
    tfs = poses_to_transforms(poses, 'w', '', 0)
    assert [t.child_frame_id for t in tfs] == ['camera_0_optical', 'camera_2_optical']
    assert len(poses_to_pose_array(poses, 'w', 0).poses) == 2
    k = np.array([[100.0, 0, 50], [0, 100.0, 40], [0, 0, 1]])
    markers = frusta_markers(poses, np.stack([k] * 3), np.array([[100, 80]] * 3),
                             'w', 0, 1.0)
    assert [m.id for m in markers.markers[1:]] == [0, 2]


def test_header_stamps_out_of_range_are_refused():
    from builtin_interfaces.msg import Time
    assert checked_stamp_ns(Time(sec=3, nanosec=999_999_999)) == 3_999_999_999
    with pytest.raises(ConversionError, match='nanosec 1500000000 is out of range'):
        checked_stamp_ns(Time(sec=3, nanosec=1_500_000_000))
    with pytest.raises(ConversionError, match='sec -1 is negative'):
        checked_stamp_ns(Time(sec=-1, nanosec=0))
