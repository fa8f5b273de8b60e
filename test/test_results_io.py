# Copyright 2026 The AetherScan ROS Authors
# SPDX-License-Identifier: Apache-2.0
"""cloud.ply / poses.json round trips, PLY reading of other layouts, atomic writes, path guard."""

import json
import os
from pathlib import Path

import numpy as np
import pytest

from aetherscan_ros.backends.base import ReconstructionResult
from aetherscan_ros.files import atomic, ply
from aetherscan_ros.files.atomic import atomic_write_bytes, safe_output_path
from aetherscan_ros.files.errors import ResultFormatError
from aetherscan_ros.files.ply import encode_ply, read_ply, write_ply
from aetherscan_ros.files.poses import read_poses_json, write_poses_json
from aetherscan_ros.files.results import load_result, save_result


def _result(num_points=500, num_views=3, seed=0, backend='classical', info=None):
    rng = np.random.default_rng(seed)
    poses = np.tile(np.eye(4), (num_views, 1, 1))
    for i in range(1, num_views):
        angle = 0.1 * i
        poses[i, :3, :3] = [[np.cos(angle), 0, np.sin(angle)], [0, 1, 0],
                            [-np.sin(angle), 0, np.cos(angle)]]
        poses[i, :3, 3] = [0.3 * i, -0.01 * i, 0.05 * i]
    K = np.array([[520.5, 0, 319.25], [0, 521.0, 239.75], [0, 0, 1]])
    return ReconstructionResult(
        points=(rng.normal(size=(num_points, 3)) * 2 + [0, 0, 5]).astype(np.float32),
        colors=rng.integers(0, 256, (num_points, 3), dtype=np.uint8),
        confidence=rng.uniform(0.5, 30, num_points).astype(np.float32),
        view_index=np.sort(rng.integers(0, num_views, num_points)).astype(np.uint16),
        poses_c2w=poses, intrinsics=np.stack([K] * num_views),
        image_sizes=np.array([[640, 480]] * num_views), backend=backend,
        timings={'features': 0.5, 'total': 1.25},
        info=dict(info or {'registered': num_views, 'device': 'cpu'}))


def test_ply_round_trip_is_exact_and_binary_little_endian(tmp_path):
    res = _result()
    path = write_ply(tmp_path / 'c.ply', res.points, res.colors, res.confidence, res.view_index,
                     comments=['backend classical'])
    raw = path.read_bytes()
    header, body = raw.split(b'end_header\n', 1)
    text = header.decode('ascii')
    assert text.startswith('ply\nformat binary_little_endian 1.0\n')
    props = [line.split()[1:] for line in text.splitlines() if line.startswith('property')]
    assert props == [['float', 'x'], ['float', 'y'], ['float', 'z'], ['uchar', 'red'],
                     ['uchar', 'green'], ['uchar', 'blue'], ['float', 'confidence'],
                     ['ushort', 'view']]
    assert 'element vertex 500' in text
    assert len(body) == 500 * 21
    # first vertex decoded by hand: little-endian float32 x
    assert np.frombuffer(body[:4], '<f4')[0] == res.points[0, 0]
    cloud = read_ply(path)
    np.testing.assert_array_equal(cloud.points, res.points)
    np.testing.assert_array_equal(cloud.colors, res.colors)
    np.testing.assert_array_equal(cloud.confidence, res.confidence)
    np.testing.assert_array_equal(cloud.view_index, res.view_index)
    assert cloud.points.dtype == np.float32 and cloud.view_index.dtype == np.uint16
    assert 'backend classical' in cloud.comments


def test_empty_cloud_round_trip(tmp_path):
    path = write_ply(tmp_path / 'e.ply', np.zeros((0, 3), np.float32))
    cloud = read_ply(path)
    assert cloud.num_points == 0 and cloud.points.shape == (0, 3)


def test_write_ply_rejects_bad_shapes(tmp_path):
    with pytest.raises(ValueError, match='points must be'):
        write_ply(tmp_path / 'x.ply', np.zeros((4, 2)))
    with pytest.raises(ValueError, match='colors must be'):
        write_ply(tmp_path / 'x.ply', np.zeros((4, 3)), colors=np.zeros((3, 3), np.uint8))
    with pytest.raises(ValueError, match='uint16'):
        write_ply(tmp_path / 'x.ply', np.zeros((1, 3)), view_index=np.array([70000]))
    assert not list(tmp_path.iterdir())


def test_read_ply_other_layouts(tmp_path):
    # big-endian doubles with float colours in [0, 1], a scalar element before the vertices
    pts = np.array([[1.5, -2.0, 3.25], [0.0, 0.5, 9.0]])
    dtype = np.dtype([('x', '>f8'), ('y', '>f8'), ('z', '>f8'), ('r', '>f4'),
                      ('red', '>f4'), ('green', '>f4'), ('blue', '>f4')])
    body = np.zeros(2, dtype)
    body['x'], body['y'], body['z'] = pts.T
    body['red'], body['green'], body['blue'] = [1.0, 0.0], [0.5, 0.0], [0.0, 1.0]
    header = ('ply\nformat binary_big_endian 1.0\nelement camera 1\nproperty float fov\n'
              'element vertex 2\nproperty double x\nproperty double y\nproperty double z\n'
              'property float r\nproperty float red\nproperty float green\n'
              'property float blue\nend_header\n')
    path = tmp_path / 'be.ply'
    path.write_bytes(header.encode() + b'\0\0\0\0' + body.tobytes())
    cloud = read_ply(path)
    np.testing.assert_allclose(cloud.points, pts)
    np.testing.assert_array_equal(cloud.colors, [[255, 128, 0], [0, 0, 255]])
    np.testing.assert_array_equal(cloud.confidence, [1, 1])
    # ASCII, positions only
    path = tmp_path / 'a.ply'
    path.write_text('ply\nformat ascii 1.0\nelement vertex 2\nproperty float x\n'
                    'property float y\nproperty float z\nend_header\n1 2 3\n4 5 6\n')
    cloud = read_ply(path)
    np.testing.assert_array_equal(cloud.points, [[1, 2, 3], [4, 5, 6]])
    np.testing.assert_array_equal(cloud.colors, [[128] * 3] * 2)


@pytest.mark.parametrize('content, message', [
    (b'not a ply at all', 'not a PLY file'),
    (b'ply\nformat binary_little_endian 1.0\nelement vertex 3\nproperty float x\n'
     b'property float y\nproperty float z\nend_header\n' + b'\0' * 20, 'truncated'),
    (b'ply\nformat binary_little_endian 1.0\nelement vertex 1\nproperty float x\n'
     b'end_header\n' + b'\0' * 4, 'no "y" property'),
    (b'ply\nformat binary_little_endian 1.0\nelement face 1\nproperty list uchar int v\n'
     b'end_header\n', 'no "vertex" element'),
    (b'ply\nformat binary_little_endian 1.0\nelement vertex 1\nproperty float128 x\n'
     b'end_header\n', 'not understood'),
])
def test_read_ply_errors_name_the_file(tmp_path, content, message):
    path = tmp_path / 'bad.ply'
    path.write_bytes(content)
    with pytest.raises(ResultFormatError, match=message) as err:
        read_ply(path)
    assert str(path) in str(err.value)


def test_read_ply_missing_file(tmp_path):
    with pytest.raises(ResultFormatError, match='no such file'):
        read_ply(tmp_path / 'absent.ply')


def test_poses_json_round_trip(tmp_path):
    res = _result(info={'model': 'random weights (not a trained model)',
                        'scale': np.float32(1.5), 'arr': np.arange(3), 'path': tmp_path})
    names = ['a.png', 'b.png', 'c.png']
    path = write_poses_json(tmp_path / 'poses.json', res, names)
    doc = json.loads(path.read_text())
    assert doc['backend'] == 'classical' and doc['num_views'] == 3
    assert doc['views'][1]['file'] == 'b.png'
    assert doc['views'][1]['width'] == 640 and doc['views'][1]['height'] == 480
    assert np.allclose(doc['views'][2]['camera_to_world'], res.poses_c2w[2])
    assert doc['info']['arr'] == [0, 1, 2] and doc['info']['scale'] == 1.5
    assert 'first camera' in doc['frame']
    back = read_poses_json(path)
    assert back.names == tuple(names)
    np.testing.assert_array_equal(back.poses_c2w, res.poses_c2w)
    np.testing.assert_array_equal(back.intrinsics, res.intrinsics)
    np.testing.assert_array_equal(back.image_sizes, res.image_sizes)
    assert back.timings == {'features': 0.5, 'total': 1.25}
    assert back.info['model'] == 'random weights (not a trained model)'


def test_poses_json_validation(tmp_path):
    res = _result()
    with pytest.raises(ValueError, match='2 image names'):
        write_poses_json(tmp_path / 'p.json', res, ['a', 'b'])
    path = write_poses_json(tmp_path / 'p.json', res)
    doc = json.loads(path.read_text())
    doc['views'][1]['K'] = [[1, 2], [3, 4]]
    path.write_text(json.dumps(doc))
    with pytest.raises(ResultFormatError, match='view 1 "K"'):
        read_poses_json(path)
    path.write_text('{"format": "something else"}')
    with pytest.raises(ResultFormatError, match='not an aetherscan poses file'):
        read_poses_json(path)
    path.write_text('{oops')
    with pytest.raises(ResultFormatError, match='not valid JSON'):
        read_poses_json(path)


def test_unregistered_view_round_trip(tmp_path):
    res = _result()
    poses = res.poses_c2w.copy()
    poses[1] = np.nan  # the classical backend's convention for a view it could not register
    res = ReconstructionResult(**{**res.__dict__, 'poses_c2w': poses})
    path = write_poses_json(tmp_path / 'p.json', res, ['a', 'b', 'c'])
    doc = json.loads(path.read_text())  # strict JSON: no NaN literals
    assert doc['views'][1]['registered'] is False
    assert doc['views'][1]['camera_to_world'] is None
    assert doc['views'][0]['registered'] is True and doc['views'][1]['K'] is not None
    back = read_poses_json(path)
    assert np.isnan(back.poses_c2w[1]).all()
    np.testing.assert_array_equal(back.poses_c2w[[0, 2]], res.poses_c2w[[0, 2]])


def test_save_and_load_result(tmp_path):
    res = _result()
    points = res.points.copy()
    points[7] = np.nan  # non-finite points are dropped on save
    res = ReconstructionResult(**{**res.__dict__, 'points': points})
    out = save_result(res, tmp_path / 'out', ['x.png', 'y.png', 'z.png'])
    assert sorted(p.name for p in out.iterdir()) == ['cloud.ply', 'poses.json']
    back, names = load_result(out)
    assert names == ('x.png', 'y.png', 'z.png')
    assert back.num_points == res.num_points - 1
    keep = np.ones(res.num_points, bool)
    keep[7] = False
    np.testing.assert_array_equal(back.points, res.points[keep])
    np.testing.assert_array_equal(back.view_index, res.view_index[keep])
    np.testing.assert_array_equal(back.poses_c2w, res.poses_c2w)
    assert back.backend == 'classical' and back.timings['total'] == 1.25
    assert json.loads((out / 'poses.json').read_text())['num_points'] == res.num_points - 1


def test_load_result_errors(tmp_path):
    with pytest.raises(ResultFormatError, match='not a directory'):
        load_result(tmp_path / 'nope')
    out = save_result(_result(num_views=3), tmp_path / 'r')
    (out / 'cloud.ply').unlink()
    with pytest.raises(ResultFormatError, match='cloud.ply: no such file'):
        load_result(out)
    # a cloud that refers to a view poses.json does not have
    res = _result(num_views=3)
    write_ply(out / 'cloud.ply', res.points, view_index=np.full(res.num_points, 5, np.uint16))
    with pytest.raises(ResultFormatError, match='refer to view 5'):
        load_result(out)


def test_atomic_write_keeps_old_file_on_failure(tmp_path, monkeypatch):
    target = tmp_path / 'cloud.ply'
    target.write_bytes(b'old content')

    class Boom(Exception):
        pass

    real_fsync = os.fsync

    def failing_fsync(fd):
        raise Boom()

    monkeypatch.setattr(atomic.os, 'fsync', failing_fsync)
    with pytest.raises(Boom):
        atomic_write_bytes(target, b'new content')
    monkeypatch.setattr(atomic.os, 'fsync', real_fsync)
    assert target.read_bytes() == b'old content'
    assert [p.name for p in tmp_path.iterdir()] == ['cloud.ply']  # no temp file left
    with pytest.raises(KeyboardInterrupt):
        with atomic.atomic_open(target) as handle:
            handle.write(b'partial')
            raise KeyboardInterrupt
    assert target.read_bytes() == b'old content'
    assert [p.name for p in tmp_path.iterdir()] == ['cloud.ply']
    old_umask = os.umask(0o022)
    try:
        atomic_write_bytes(target, b'new content')
    finally:
        os.umask(old_umask)
    assert target.read_bytes() == b'new content'
    assert target.stat().st_mode & 0o777 == 0o644  # not the 0600 of a mkstemp file


def test_safe_output_path(tmp_path):
    base = tmp_path / 'out'
    base.mkdir()
    assert safe_output_path(base, 'scan.ply') == base.resolve() / 'scan.ply'
    assert safe_output_path(str(base), 'run_1/cloud.ply') == base.resolve() / 'run_1/cloud.ply'
    assert safe_output_path(base, 'a/../b.ply') == base.resolve() / 'b.ply'
    for bad, why in [('', 'empty'), ('.', 'empty'), ('../x.ply', 'escapes'),
                     ('a/../../x', 'escapes'), ('/etc/passwd', 'absolute'),
                     ('~/x', 'absolute'), ('x\0y', 'NUL')]:
        with pytest.raises(ValueError, match=why):
            safe_output_path(base, bad)
    outside = tmp_path / 'elsewhere'
    outside.mkdir()
    (base / 'link').symlink_to(outside)
    with pytest.raises(ValueError, match='escapes'):
        safe_output_path(base, 'link/x.ply')
    assert isinstance(safe_output_path(base, 'x'), Path)


def test_encode_ply_defaults():
    data = encode_ply(np.ones((2, 3)))
    cloud_body = data.split(b'end_header\n', 1)[1]
    rec = np.frombuffer(cloud_body, ply.PLY_VERTEX_DTYPE)
    assert rec['red'].tolist() == [128, 128] and rec['confidence'].tolist() == [1.0, 1.0]
    assert rec['view'].tolist() == [0, 0]
