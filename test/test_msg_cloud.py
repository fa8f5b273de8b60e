# Copyright 2026 The AetherScan ROS Authors
# SPDX-License-Identifier: Apache-2.0
"""Tests of aetherscan_ros.ros.pointcloud2: PointCloud2 build/read through rclpy serialization."""

import array

import numpy as np
import pytest
from rclpy.serialization import deserialize_message, serialize_message
from sensor_msgs.msg import PointCloud2
from std_msgs.msg import Header

from aetherscan_ros import cloud as C
from aetherscan_ros.ros import pointcloud2 as M

_NP = {C.INT8: 'i1', C.UINT8: 'u1', C.INT16: 'i2', C.UINT16: 'u2', C.INT32: 'i4',
       C.UINT32: 'u4', C.FLOAT32: 'f4', C.FLOAT64: 'f8'}


def _wire(msg):
    """Serialize to CDR and back, as a subscriber in another process would see it."""
    return deserialize_message(serialize_message(msg), PointCloud2)


def _cloud(n, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.normal(size=(n, 3)).astype(np.float32),
            rng.integers(0, 256, (n, 3), dtype=np.uint8),
            rng.uniform(0, 9, n).astype(np.float32),
            rng.integers(0, 12, n).astype(np.uint16))


def _read_points_like_sensor_msgs_py(msg):
    """
    Read a cloud the way sensor_msgs_py.read_points does (real package when importable).

    The fallback follows its algorithm: one structured dtype from *all* fields (count must be
    > 0, names unique, offsets as given, itemsize = point_step) over ``msg.data``.
    """
    try:
        from sensor_msgs_py import point_cloud2
        return point_cloud2.read_points(msg)
    except ImportError:
        pass
    names, formats, offsets = [], [], []
    for i, f in enumerate(msg.fields):
        assert f.count > 0, "Can't process fields with count = 0."
        name = f.name or f'unnamed_field_{i}'
        assert name not in names, 'Duplicate field names are not allowed!'
        names.append(name)
        formats.append(np.dtype(_NP[f.datatype]).str)
        offsets.append(f.offset)
    dtype = np.dtype({'names': names, 'formats': formats, 'offsets': offsets,
                      'itemsize': msg.point_step})
    return np.ndarray((msg.width * msg.height,), dtype, buffer=msg.data)


def test_round_trip_through_cdr():
    p, c, f, v = _cloud(3000)
    msg = M.to_pointcloud2((1_700_000_000_123_456_789, 'world'), p, c, f, v)
    assert msg.header.stamp.sec == 1_700_000_000 and msg.header.stamp.nanosec == 123_456_789
    assert (msg.height, msg.width, msg.point_step, msg.row_step) == (1, 3000, 24, 72000)
    assert msg.is_dense and not msg.is_bigendian
    back = _wire(msg)
    cloud, info = M.from_pointcloud2(back)
    assert info is None
    for got, want in zip(cloud, (p, c, f, v)):
        np.testing.assert_array_equal(got, want)
    # Zero copy on the receive side: the points are a view into msg.data.
    assert cloud.points.base is not None and not cloud.points.flags.owndata


def test_message_data_is_the_packed_buffer_without_copy():
    p, c, f, v = _cloud(10)
    msg = M.to_pointcloud2(Header(frame_id='w'), p, c, f, v)
    assert isinstance(msg.data, array.array) and msg.data.typecode == 'B'
    if M.ZERO_COPY_DATA:
        data, fields, step = C.pack_cloud(p, c, f, v)
        m2 = M.packed_to_pointcloud2(Header(frame_id='w'), data, fields, step)
        assert m2.data is data


def test_nan_points_mark_cloud_not_dense():
    p, c, f, v = _cloud(50)
    p[7] = np.nan
    msg = _wire(M.to_pointcloud2(Header(frame_id='w'), p, c, f, v))
    assert not msg.is_dense
    cloud, _ = M.from_pointcloud2(msg)
    assert np.isnan(cloud.points[7]).all()
    np.testing.assert_array_equal(cloud.points, p)
    kept, _ = M.from_pointcloud2(msg, skip_nans=True)
    assert len(kept) == 49


def test_rgb_bytes_as_rviz_reads_them():
    """Pure red, green, blue and a mixed colour: RViz reads uint32 0x00RRGGBB at offset 12."""
    colors = np.array([[255, 0, 0], [0, 255, 0], [0, 0, 255], [0x12, 0x34, 0x56]], np.uint8)
    msg = _wire(M.to_pointcloud2(Header(frame_id='w'), np.zeros((4, 3), np.float32), colors))
    rgb_field = next(f for f in msg.fields if f.name == 'rgb')
    assert (rgb_field.offset, rgb_field.datatype, rgb_field.count) == (12, 7, 1)
    raw = bytes(msg.data)
    words = [int.from_bytes(raw[i * 24 + 12:i * 24 + 16], 'little') for i in range(4)]
    assert words == [0xFF0000, 0x00FF00, 0x0000FF, 0x123456]
    for word, (r, g, b) in zip(words, colors.tolist()):
        assert ((word >> 16) & 0xFF, (word >> 8) & 0xFF, word & 0xFF) == (r, g, b)


def test_chunk_message_readable_by_sensor_msgs_py_algorithm():
    p, c, f, v = _cloud(40)
    info = C.ChunkInfo(recon=3, index=1, count=0, last=False)
    msg = _wire(M.to_pointcloud2(Header(frame_id='w'), p, c, f, v, chunk_info=info))
    assert M.chunk_info_of(msg) == info
    pts = _read_points_like_sensor_msgs_py(msg)
    np.testing.assert_array_equal(pts['x'], p[:, 0])
    np.testing.assert_array_equal(pts['z'], p[:, 2])
    np.testing.assert_array_equal(pts['view'], v)
    np.testing.assert_array_equal(pts['rgb'].view(np.uint32), C.pack_rgb(c))
    assert (pts[info.encode()] == 0).all()  # the marker reads as an extra zero byte
    # RViz's consistency rule and the presence of x, y, z, rgb by name.
    assert len(msg.data) == msg.width * msg.height * msg.point_step
    assert {'x', 'y', 'z', 'rgb'} <= {fl.name for fl in msg.fields}


def test_empty_and_single_point_messages():
    empty = _wire(M.to_pointcloud2(Header(frame_id='w'), np.zeros((0, 3), np.float32),
                                   np.zeros((0, 3), np.uint8),
                                   chunk_info=C.ChunkInfo(9, 4, 0, last=True)))
    assert empty.width == 0 and len(empty.data) == 0
    cloud, info = M.from_pointcloud2(empty)
    assert len(cloud) == 0 and info.last
    one = _wire(M.make_cloud_msg(([[1.0, 2.0, 3.0]], np.array([[1, 2, 3]], np.uint8), 0.5, 2),
                                 'w', 5))
    cloud, _ = M.from_pointcloud2(one)
    assert cloud.points.tolist() == [[1.0, 2.0, 3.0]] and cloud.colors.tolist() == [[1, 2, 3]]
    assert cloud.confidence.tolist() == [0.5] and cloud.view.tolist() == [2]


def test_chunks_reassemble_exactly_out_of_order_through_cdr():
    views = [_cloud(int(m), seed=s) for s, m in enumerate([900, 0, 1500, 333])]
    stream = C.ChunkStream(recon=4, chunk_points=400)
    msgs = []
    for view, (p, c, f, _) in enumerate(views):
        msgs += [M.make_cloud_msg(ch, 'world', 10, chunk_info=i)
                 for i, ch in stream.add(p, c, f, view)]
    msgs += [M.make_cloud_msg(ch, 'world', 10, chunk_info=i) for i, ch in stream.finish()]
    wire = [_wire(m) for m in msgs]
    asm = C.ChunkAssembler()
    order = list(reversed(range(len(wire))))
    outputs = [asm.add(*reversed(M.from_pointcloud2(wire[i]))) for i in order]
    full = outputs[-1]
    assert full is not None and all(o is None for o in outputs[:-1])
    expected = C.CloudArrays.concatenate([C.as_cloud(p, c, f, view)
                                          for view, (p, c, f, _) in enumerate(views)])
    for got, want in zip(full, expected):
        np.testing.assert_array_equal(got, want)


def test_bad_messages_give_clear_errors():
    p, c, f, v = _cloud(5)
    msg = _wire(M.to_pointcloud2(Header(frame_id='cam'), p, c, f, v))
    msg.width = 6
    with pytest.raises(ValueError, match=r'/scan: data has 120 bytes, width 6'):
        M.from_pointcloud2(msg, source='/scan')
    msg.width = 5
    msg.fields = [fl for fl in msg.fields if fl.name != 'y']
    with pytest.raises(ValueError, match="no 'y' field"):
        M.from_pointcloud2(msg)
    with pytest.raises(TypeError, match='header must be'):
        M.to_pointcloud2('world', p, c)


def test_old_module_path_gives_the_same_objects():
    """``aetherscan_ros.msg_cloud`` (the path before the ros/ folder) re-exports the names."""
    from aetherscan_ros import msg_cloud

    assert msg_cloud.to_pointcloud2 is M.to_pointcloud2
    for name in msg_cloud.__all__:
        assert getattr(msg_cloud, name) is getattr(M, name), name
