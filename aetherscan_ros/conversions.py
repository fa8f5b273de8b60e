# Copyright 2026 The AetherScan ROS Authors
# SPDX-License-Identifier: Apache-2.0
"""
ROS message <-> numpy conversions for the node, each input validated with a clear reason.

Inputs: ``sensor_msgs/Image`` (rgb8, bgr8, rgba8, bgra8, mono8, mono16, 8UC1/3/4, 16UC1,
rgb16, bgr16, rgba16, bgra16, yuv422 (UYVY), yuv422_yuy2 (YUYV); row padding through ``step``;
big-endian 16-bit), ``sensor_msgs/CompressedImage`` (jpeg/png, decided by the data's magic
bytes) and ``sensor_msgs/CameraInfo`` (K). Every problem raises :class:`ConversionError` whose
message names the reason; the node prefixes the topic.

16-bit images become 8-bit by ``v * 255 / 65535`` (rounded), as OpenCV's ``convertTo`` does;
alpha channels are dropped. cv_bridge is used to view raw image buffers when it is importable;
the validation and the colour conversion are the same either way.

Outputs: per-view ``TransformStamped`` (REP-103 optical frames), ``PoseArray``, frustum
``MarkerArray`` and JSON event strings. The PointCloud2 messages are built by
:mod:`aetherscan_ros.msg_cloud`.
"""

import io
import json
import math
from typing import List, Sequence, Tuple

import cv2
from geometry_msgs.msg import Point, Pose, PoseArray, TransformStamped
import numpy as np
from std_msgs.msg import ColorRGBA, String
from visualization_msgs.msg import Marker, MarkerArray

from aetherscan_ros.geometry import rotation_matrix_to_quaternion

try:  # pragma: no cover - cv_bridge is not installable from pip
    from cv_bridge import CvBridge
    _BRIDGE = CvBridge()
except ImportError:  # pragma: no cover - the usual case in a pip environment
    _BRIDGE = None


class ConversionError(ValueError):
    """A message cannot be converted; the message says why."""


# encoding -> (channels, bytes per channel, colour order of the channels)
ENCODINGS = {
    'rgb8': (3, 1, 'rgb'), 'bgr8': (3, 1, 'bgr'), 'rgba8': (4, 1, 'rgba'),
    'bgra8': (4, 1, 'bgra'), 'mono8': (1, 1, 'mono'), 'mono16': (1, 2, 'mono'),
    '8UC1': (1, 1, 'mono'), '8UC3': (3, 1, 'bgr'), '8UC4': (4, 1, 'bgra'),
    '16UC1': (1, 2, 'mono'), 'rgb16': (3, 2, 'rgb'), 'bgr16': (3, 2, 'bgr'),
    'rgba16': (4, 2, 'rgba'), 'bgra16': (4, 2, 'bgra'),
    'yuv422': (2, 1, 'uyvy'), 'yuv422_yuy2': (2, 1, 'yuyv'),
}

_JPEG_MAGIC = b'\xff\xd8\xff'
_PNG_MAGIC = b'\x89PNG\r\n\x1a\n'


def stamp_to_ns(stamp) -> int:
    """Return a ``builtin_interfaces/Time`` as integer nanoseconds."""
    return int(stamp.sec) * 1_000_000_000 + int(stamp.nanosec)


def ns_to_stamp(ns: int):
    """Return integer nanoseconds as a ``builtin_interfaces/Time``."""
    from builtin_interfaces.msg import Time
    ns = max(int(ns), 0)
    return Time(sec=ns // 1_000_000_000, nanosec=ns % 1_000_000_000)


def _to_uint8(array: np.ndarray) -> np.ndarray:
    if array.dtype == np.uint8:
        return array
    return np.round(array.astype(np.float32) * (255.0 / 65535.0)).astype(np.uint8)


def _channels_to_rgb(pixels: np.ndarray, order: str) -> np.ndarray:
    """Convert ``[H, W, C]`` pixels in ``order`` to a contiguous ``[H, W, 3]`` uint8 RGB copy."""
    if order in ('uyvy', 'yuyv'):
        code = cv2.COLOR_YUV2RGB_UYVY if order == 'uyvy' else cv2.COLOR_YUV2RGB_YUYV
        return cv2.cvtColor(np.ascontiguousarray(pixels), code)
    pixels = _to_uint8(pixels)
    if order == 'mono':
        return np.ascontiguousarray(np.repeat(pixels.reshape(pixels.shape[:2] + (1,)), 3, 2))
    if order in ('bgr', 'bgra'):
        return np.ascontiguousarray(pixels[..., 2::-1])
    return np.ascontiguousarray(pixels[..., :3])


def _check_size(width: int, height: int, max_side: int):
    if width <= 0 or height <= 0:
        raise ConversionError(f'empty image ({width}x{height})')
    if width < 2 or height < 2:
        raise ConversionError(f'image too small ({width}x{height}); need at least 2x2')
    if width > max_side or height > max_side:
        raise ConversionError(
            f'image {width}x{height} exceeds max_image_side={max_side}')


def image_to_rgb(msg, max_side: int = 16384) -> np.ndarray:
    """
    Convert a ``sensor_msgs/Image`` to an ``[H, W, 3]`` uint8 RGB array (a copy).

    Raises :class:`ConversionError` for an unknown encoding, a zero or oversized image, a
    ``step`` smaller than a row, or ``data`` whose length differs from ``step * height``.
    """
    width, height, step = int(msg.width), int(msg.height), int(msg.step)
    _check_size(width, height, max_side)
    encoding = msg.encoding
    if encoding not in ENCODINGS:
        what = ''
        if encoding.startswith(('32F', '64F', '16F', '32S')):
            what = ' (a float/integer image is a depth or disparity map, not a camera image)'
        raise ConversionError(
            f'unsupported encoding {encoding!r}{what} (supported: {", ".join(ENCODINGS)})')
    channels, depth, order = ENCODINGS[encoding]
    if order in ('uyvy', 'yuyv') and width % 2:
        raise ConversionError(f'{encoding} needs an even width (2 pixels share U and V), '
                              f'got {width}')
    row = width * channels * depth
    if step < row:
        raise ConversionError(
            f'step {step} is smaller than width*bytes_per_pixel = {row} ({encoding})')
    size = len(msg.data)
    if size != step * height:
        raise ConversionError(
            f'data has {size} bytes, expected step*height = {step}*{height} = {step * height}')
    if _BRIDGE is not None and not msg.is_bigendian:  # pragma: no cover - needs cv_bridge
        pixels = np.asarray(_BRIDGE.imgmsg_to_cv2(msg, desired_encoding='passthrough'))
        pixels = pixels.reshape(height, width, channels)
    else:
        raw = np.frombuffer(msg.data, np.uint8).reshape(height, step)[:, :row]
        dtype = np.uint8 if depth == 1 else np.dtype('>u2' if msg.is_bigendian else '<u2')
        pixels = raw.view(dtype).reshape(height, width, channels) if depth == 1 else \
            np.ascontiguousarray(raw).view(dtype).reshape(height, width, channels)
    return _channels_to_rgb(pixels, order)


def compressed_size(data: bytes) -> Tuple[int, int]:
    """Return ``(width, height)`` read from a JPEG/PNG header without decoding the pixels."""
    from PIL import Image as PILImage
    try:
        with PILImage.open(io.BytesIO(data)) as img:
            return int(img.size[0]), int(img.size[1])
    except Exception as exc:  # PIL raises many types for bad headers
        raise ConversionError(f'corrupt image header ({exc})') from exc


def compressed_to_rgb(msg, max_side: int = 16384) -> np.ndarray:
    """
    Decode a ``sensor_msgs/CompressedImage`` (jpeg or png) to ``[H, W, 3]`` uint8 RGB.

    The size is read from the header first, so an oversized image is rejected before any
    pixel is decoded. Raises :class:`ConversionError` for empty, unknown or corrupt data.
    """
    data = bytes(msg.data)
    fmt = str(msg.format)
    if not data:
        raise ConversionError(f'empty compressed image (format {fmt!r})')
    if 'compresseddepth' in fmt.lower():
        raise ConversionError(f'format {fmt!r} is a depth transport, not a camera image')
    if not (data.startswith(_JPEG_MAGIC) or data.startswith(_PNG_MAGIC)):
        raise ConversionError(
            f'data is neither JPEG nor PNG (format {fmt!r}, first bytes {data[:4].hex()})')
    width, height = compressed_size(data)
    _check_size(width, height, max_side)
    decoded = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if decoded is None:
        raise ConversionError(f'corrupt {fmt or "compressed"} data ({len(data)} bytes)')
    if decoded.ndim == 2:
        decoded = decoded[..., None]
    order = {1: 'mono', 3: 'bgr', 4: 'bgra'}.get(decoded.shape[2])
    if order is None:
        raise ConversionError(f'unsupported channel count {decoded.shape[2]}')
    return _channels_to_rgb(decoded, order)


def camera_info_to_k(msg) -> Tuple[np.ndarray, Tuple[int, int]]:
    """
    Return ``(K [3, 3] float64, (width, height))`` of a ``sensor_msgs/CameraInfo``.

    Raises :class:`ConversionError` when K is zero, non-finite or not a pinhole matrix.
    """
    k = np.asarray(msg.k, np.float64).reshape(-1)
    if k.size != 9:
        raise ConversionError(f'K has {k.size} values, expected 9')
    k = k.reshape(3, 3)
    if not np.all(np.isfinite(k)):
        raise ConversionError('K contains NaN or infinity')
    if k[0, 0] <= 0 or k[1, 1] <= 0:
        raise ConversionError(f'K has non-positive focal lengths fx={k[0, 0]}, fy={k[1, 1]}')
    if abs(k[2, 2] - 1.0) > 1e-6 or np.any(k[2, :2] != 0) or k[1, 0] != 0:
        raise ConversionError('K is not a pinhole matrix [[fx, s, cx], [0, fy, cy], [0, 0, 1]]')
    return k, (int(msg.width), int(msg.height))


def k_for_image(k: np.ndarray, info_size: Tuple[int, int],
                image_size: Tuple[int, int]) -> np.ndarray:
    """
    Return K valid for ``image_size``; raise :class:`ConversionError` on a size mismatch.

    A CameraInfo with width/height 0 (some drivers leave them unset) is taken as is.
    """
    if info_size == (0, 0) or tuple(info_size) == tuple(image_size):
        return k
    raise ConversionError(
        f'camera_info is for {info_size[0]}x{info_size[1]} but the image is '
        f'{image_size[0]}x{image_size[1]}')


def rgb_to_image_msg(rgb: np.ndarray, stamp_ns: int = 0, frame_id: str = ''):
    """Build an rgb8 ``sensor_msgs/Image`` from ``[H, W, 3]`` uint8 RGB (data set as bytes)."""
    from sensor_msgs.msg import Image
    rgb = np.ascontiguousarray(rgb, np.uint8)
    msg = Image(height=int(rgb.shape[0]), width=int(rgb.shape[1]), encoding='rgb8',
                is_bigendian=0, step=int(rgb.shape[1]) * 3)
    msg.header.stamp = ns_to_stamp(stamp_ns)
    msg.header.frame_id = frame_id
    msg.data = rgb.tobytes()
    return msg


def rgb_to_compressed_msg(rgb: np.ndarray, fmt: str = 'jpeg', quality: int = 95,
                          stamp_ns: int = 0, frame_id: str = ''):
    """Encode ``[H, W, 3]`` uint8 RGB as a ``sensor_msgs/CompressedImage`` (jpeg or png)."""
    from sensor_msgs.msg import CompressedImage
    bgr = np.ascontiguousarray(rgb[..., ::-1])
    if fmt == 'jpeg':
        ok, buf = cv2.imencode('.jpg', bgr, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    elif fmt == 'png':
        ok, buf = cv2.imencode('.png', bgr)
    else:
        raise ValueError(f'format must be jpeg or png, got {fmt!r}')
    if not ok:
        raise ValueError(f'cv2 could not encode a {rgb.shape} image as {fmt}')
    msg = CompressedImage(format=f'rgb8; {fmt} compressed bgr8')
    msg.header.stamp = ns_to_stamp(stamp_ns)
    msg.header.frame_id = frame_id
    msg.data = buf.tobytes()
    return msg


def make_camera_info(k: np.ndarray, width: int, height: int, stamp_ns: int = 0,
                     frame_id: str = ''):
    """Build a distortion-free ``sensor_msgs/CameraInfo`` for pinhole ``K`` ``[3, 3]``."""
    from sensor_msgs.msg import CameraInfo
    k = np.asarray(k, np.float64)
    msg = CameraInfo(width=int(width), height=int(height), distortion_model='plumb_bob')
    msg.header.stamp = ns_to_stamp(stamp_ns)
    msg.header.frame_id = frame_id
    msg.d = [0.0] * 5
    msg.k = [float(v) for v in k.reshape(-1)]
    msg.r = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
    proj = np.zeros((3, 4))
    proj[:, :3] = k
    msg.p = [float(v) for v in proj.reshape(-1)]
    return msg


def view_frame(frame_prefix: str, view: int) -> str:
    """Return the TF frame id of view ``view``: ``<frame_prefix>camera_<view>_optical``."""
    return f'{frame_prefix}camera_{int(view)}_optical'


def _pose_msg(pose: np.ndarray) -> Pose:
    quat = rotation_matrix_to_quaternion(pose[:3, :3])
    out = Pose()
    out.position.x, out.position.y, out.position.z = (float(v) for v in pose[:3, 3])
    (out.orientation.x, out.orientation.y, out.orientation.z,
     out.orientation.w) = (float(v) for v in quat)
    return out


def poses_to_transforms(poses_c2w: np.ndarray, world_frame: str, frame_prefix: str,
                        stamp_ns: int) -> List[TransformStamped]:
    """
    Return one ``TransformStamped`` world_frame -> camera_<i>_optical per pose ``[V, 4, 4]``.

    Views without a pose (non-finite, e.g. not registered by the classical backend) are left
    out; ``i`` stays the view index in the reconstruction.
    """
    out = []
    for view, pose in enumerate(np.asarray(poses_c2w, np.float64)):
        if not np.all(np.isfinite(pose)):
            continue
        msg = TransformStamped()
        msg.header.stamp = ns_to_stamp(stamp_ns)
        msg.header.frame_id = world_frame
        msg.child_frame_id = view_frame(frame_prefix, view)
        pose_msg = _pose_msg(pose)
        msg.transform.translation.x = pose_msg.position.x
        msg.transform.translation.y = pose_msg.position.y
        msg.transform.translation.z = pose_msg.position.z
        msg.transform.rotation = pose_msg.orientation
        out.append(msg)
    return out


def identity_transform(parent: str, child: str, stamp_ns: int) -> TransformStamped:
    """Return an identity ``TransformStamped`` parent -> child."""
    msg = TransformStamped()
    msg.header.stamp = ns_to_stamp(stamp_ns)
    msg.header.frame_id = parent
    msg.child_frame_id = child
    msg.transform.rotation.w = 1.0
    return msg


def transform_to_matrix(msg: TransformStamped) -> np.ndarray:
    """Return the ``[4, 4]`` matrix of a ``TransformStamped`` (parent <- child)."""
    from aetherscan_ros.geometry import quaternion_to_rotation_matrix
    rot = msg.transform.rotation
    tr = msg.transform.translation
    out = np.eye(4)
    out[:3, :3] = quaternion_to_rotation_matrix(np.array([rot.x, rot.y, rot.z, rot.w]))
    out[:3, 3] = [tr.x, tr.y, tr.z]
    return out


def poses_to_pose_array(poses_c2w: np.ndarray, world_frame: str, stamp_ns: int) -> PoseArray:
    """Return the finite camera poses ``[V, 4, 4]`` (optical frames) as a ``PoseArray``."""
    msg = PoseArray()
    msg.header.stamp = ns_to_stamp(stamp_ns)
    msg.header.frame_id = world_frame
    msg.poses = [_pose_msg(p) for p in np.asarray(poses_c2w, np.float64)
                 if np.all(np.isfinite(p))]
    return msg


def frustum_corners(k: np.ndarray, size: Sequence[int], depth: float) -> np.ndarray:
    """Return the ``[4, 3]`` image-corner rays of pinhole ``K`` at ``depth`` (camera frame)."""
    width, height = float(size[0]), float(size[1])
    pix = np.array([[0, 0, 1], [width, 0, 1], [width, height, 1], [0, height, 1]], np.float64)
    rays = pix @ np.linalg.inv(np.asarray(k, np.float64)).T
    return rays / rays[:, 2:3] * depth


def frusta_markers(poses_c2w: np.ndarray, intrinsics: np.ndarray, image_sizes: np.ndarray,
                   world_frame: str, stamp_ns: int, depth: float,
                   namespace: str = 'aetherscan_cameras') -> MarkerArray:
    """
    Return a ``MarkerArray``: a DELETEALL, then one LINE_LIST frustum per posed view.

    View 0 (the world frame) is drawn red, the others green to blue along the view index;
    marker ``id`` = view index. Views with non-finite poses are left out.
    """
    out = MarkerArray()
    clear = Marker(action=Marker.DELETEALL, ns=namespace)
    clear.header.frame_id = world_frame
    out.markers.append(clear)
    count = len(poses_c2w)
    for view in range(count):
        pose = np.asarray(poses_c2w[view], np.float64)
        if not np.all(np.isfinite(pose)):
            continue
        corners = frustum_corners(intrinsics[view], image_sizes[view], depth)
        world = corners @ pose[:3, :3].T + pose[:3, 3]
        apex = pose[:3, 3]
        segments = []
        for i in range(4):
            segments += [apex, world[i], world[i], world[(i + 1) % 4]]
        marker = Marker(type=Marker.LINE_LIST, action=Marker.ADD, ns=namespace, id=view)
        marker.header.frame_id = world_frame
        marker.header.stamp = ns_to_stamp(stamp_ns)
        marker.pose.orientation.w = 1.0
        marker.scale.x = max(depth * 0.02, 1e-4)
        frac = view / max(count - 1, 1)
        marker.color = ColorRGBA(r=1.0, g=0.0, b=0.0, a=1.0) if view == 0 else \
            ColorRGBA(r=0.0, g=float(1.0 - frac), b=float(frac), a=1.0)
        marker.points = [Point(x=float(p[0]), y=float(p[1]), z=float(p[2])) for p in segments]
        out.markers.append(marker)
    return out


def _json_default(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)


def event_msg(event: str, **fields) -> String:
    """Return a ``std_msgs/String`` holding ``{"event": event, **fields}`` as JSON."""
    payload = {'event': event}
    payload.update(fields)
    for key, value in payload.items():
        if isinstance(value, float) and not math.isfinite(value):
            payload[key] = None
    return String(data=json.dumps(payload, default=_json_default, sort_keys=False))


def parse_event(msg) -> dict:
    """Return the dict of an ``~/events`` message (``std_msgs/String`` or its JSON text)."""
    return json.loads(msg if isinstance(msg, str) else msg.data)


def robust_extent(points: np.ndarray) -> float:
    """Return the norm of the 5..95 percentile box of ``points`` ``[N, 3]`` (0 if empty)."""
    if len(points) == 0:
        return 0.0
    lo, hi = np.percentile(points, [5.0, 95.0], axis=0)
    return float(np.linalg.norm(hi - lo))
