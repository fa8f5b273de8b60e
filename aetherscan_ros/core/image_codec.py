# Copyright 2026 The AetherScan ROS Authors
# SPDX-License-Identifier: Apache-2.0
"""
Camera image messages -> RGB numpy arrays, each input validated; ROS-free.

The functions read the fields of ``sensor_msgs/Image`` and ``CompressedImage`` by attribute, so
they take rclpy messages (the node, through :mod:`aetherscan_ros.ros.images`) and messages
deserialised from a bag by ``rosbags`` (:mod:`aetherscan_ros.files.bag`) alike.

Inputs: ``Image`` (rgb8, bgr8, rgba8, bgra8, mono8, mono16, 8UC1/3/4, 16UC1, rgb16, bgr16,
rgba16, bgra16, yuv422 (UYVY), yuv422_yuy2 (YUYV); row padding through ``step``; big-endian
16-bit) and ``CompressedImage`` (jpeg/png, decided by the data's magic bytes). Every problem
raises :class:`ConversionError` whose message names the reason; callers prefix the topic.

16-bit images become 8-bit by ``v * 255 / 65535`` (rounded), as OpenCV's ``convertTo`` does;
alpha channels are dropped.
"""

import io
from typing import Tuple

import cv2
import numpy as np


class ConversionError(ValueError):
    """A message cannot be converted; the message says why (the caller prefixes the topic)."""


# encoding -> (channels, bytes per channel, colour order of the channels)
ENCODINGS = {
    'rgb8': (3, 1, 'rgb'), 'bgr8': (3, 1, 'bgr'), 'rgba8': (4, 1, 'rgba'),
    'bgra8': (4, 1, 'bgra'), 'mono8': (1, 1, 'mono'), 'mono16': (1, 2, 'mono'),
    '8UC1': (1, 1, 'mono'), '8UC3': (3, 1, 'bgr'), '8UC4': (4, 1, 'bgra'),
    '16UC1': (1, 2, 'mono'), 'rgb16': (3, 2, 'rgb'), 'bgr16': (3, 2, 'bgr'),
    'rgba16': (4, 2, 'rgba'), 'bgra16': (4, 2, 'bgra'),
    'yuv422': (2, 1, 'uyvy'), 'yuv422_yuy2': (2, 1, 'yuyv'),
}
JPEG_MAGIC = b'\xff\xd8\xff'
PNG_MAGIC = b'\x89PNG\r\n\x1a\n'


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


def check_size(width: int, height: int, max_side: int) -> None:
    """Raise :class:`ConversionError` for an empty, tiny (< 2 px) or oversized image."""
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
    check_size(width, height, max_side)
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
    raw = np.frombuffer(msg.data, np.uint8).reshape(height, step)[:, :row]
    if depth == 1:
        pixels = raw.reshape(height, width, channels)
    else:
        dtype = np.dtype('>u2' if msg.is_bigendian else '<u2')
        pixels = np.ascontiguousarray(raw).view(dtype).reshape(height, width, channels)
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
    if not (data.startswith(JPEG_MAGIC) or data.startswith(PNG_MAGIC)):
        raise ConversionError(
            f'data is neither JPEG nor PNG (format {fmt!r}, first bytes {data[:4].hex()})')
    width, height = compressed_size(data)
    check_size(width, height, max_side)
    decoded = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if decoded is None:
        raise ConversionError(f'corrupt {fmt or "compressed"} data ({len(data)} bytes)')
    if decoded.ndim == 2:
        decoded = decoded[..., None]
    order = {1: 'mono', 3: 'bgr', 4: 'bgra'}.get(decoded.shape[2])
    if order is None:
        raise ConversionError(f'unsupported channel count {decoded.shape[2]}')
    return _channels_to_rgb(decoded, order)


def encode_rgb(rgb: np.ndarray, fmt: str = 'jpeg', quality: int = 95) -> bytes:
    """Return ``[H, W, 3]`` uint8 RGB encoded as a JPEG or PNG file's bytes."""
    bgr = np.ascontiguousarray(np.asarray(rgb, np.uint8)[..., ::-1])
    if fmt == 'jpeg':
        ok, buf = cv2.imencode('.jpg', bgr, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    elif fmt == 'png':
        ok, buf = cv2.imencode('.png', bgr)
    else:
        raise ValueError(f'format must be jpeg or png, got {fmt!r}')
    if not ok:
        raise ValueError(f'cv2 could not encode a {rgb.shape} image as {fmt}')
    return buf.tobytes()
