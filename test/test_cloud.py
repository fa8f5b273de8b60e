# Copyright 2026 The AetherScan ROS Authors
# SPDX-License-Identifier: Apache-2.0
"""Unit tests of aetherscan_ros.cloud: packing, LOD, chunk identification and reassembly."""

import numpy as np
import pytest

from aetherscan_ros import cloud as C
from aetherscan_ros.cloud import packing as CP


def _cloud(n, seed=0, views=4):
    rng = np.random.default_rng(seed)
    points = rng.normal(size=(n, 3)).astype(np.float32)
    colors = rng.integers(0, 256, (n, 3), dtype=np.uint8)
    conf = rng.uniform(1.0, 5.0, n).astype(np.float32)
    view = np.sort(rng.integers(0, views, n)).astype(np.uint16)
    return points, colors, conf, view


def test_pack_unpack_round_trip_exact():
    p, c, f, v = _cloud(5000)
    data, fields, step = C.pack_cloud(p, c, f, v)
    assert step == 24 and len(data) == 5000 * 24
    assert [x.name for x in fields] == ['x', 'y', 'z', 'rgb', 'confidence', 'view']
    out = C.unpack_cloud(data, fields, step)
    np.testing.assert_array_equal(out.points, p)
    np.testing.assert_array_equal(out.colors, c)
    np.testing.assert_array_equal(out.confidence, f)
    np.testing.assert_array_equal(out.view, v)
    assert out.view.dtype == np.uint16 and out.colors.dtype == np.uint8


def test_parallel_pack_equals_single_thread_pack(monkeypatch):
    n = CP._PARALLEL_MIN_POINTS + 12345  # odd size: uneven thread slices
    p, c, f, v = _cloud(n, seed=3)
    monkeypatch.setattr(CP, '_PACK_THREADS', 3)
    parallel, _, _ = C.pack_cloud(p, c, f, v)
    monkeypatch.setattr(CP, '_PACK_THREADS', 1)
    single, _, _ = C.pack_cloud(p, c, f, v)
    assert bytes(parallel) == bytes(single)
    out = C.unpack_cloud(parallel, C.cloud_fields(), C.POINT_STEP)
    np.testing.assert_array_equal(out.points, p)
    np.testing.assert_array_equal(out.colors, c)
    np.testing.assert_array_equal(out.view, v)


def test_pack_bytes_layout_of_known_point():
    """The bytes RViz reads: x,y,z floats, rgb as uint32 0x00RRGGBB, confidence, view, 0 pad."""
    data, _, _ = C.pack_cloud(np.array([[1.0, -2.0, 3.5]], np.float32),
                              np.array([[0x12, 0x34, 0x56]], np.uint8), 0.25, 7)
    raw = bytes(data)
    assert np.frombuffer(raw[0:12], '<f4').tolist() == [1.0, -2.0, 3.5]
    assert raw[12:16] == bytes([0x56, 0x34, 0x12, 0x00])  # B, G, R, 0 little endian
    assert int(np.frombuffer(raw[12:16], '<u4')[0]) == 0x00123456
    assert np.frombuffer(raw[16:20], '<f4')[0] == 0.25
    assert np.frombuffer(raw[20:22], '<u2')[0] == 7
    assert raw[22:24] == b'\0\0'


def test_rgb_matches_rviz_unpacking():
    """Unpack as RViz's RGB8 transformer: r = (rgb >> 16) & 0xff, g = (rgb >> 8) & 0xff, b."""
    _, c, _, _ = _cloud(300)
    packed = C.pack_rgb(c)
    r, g, b = (packed >> 16) & 0xFF, (packed >> 8) & 0xFF, packed & 0xFF
    np.testing.assert_array_equal(np.stack([r, g, b], 1), c)
    np.testing.assert_array_equal(C.unpack_rgb(packed.view(np.float32)), c)
    data, fields, step = C.pack_cloud(np.zeros((300, 3), np.float32), c)
    rgb_u32 = np.frombuffer(bytes(data), np.uint8).reshape(300, 24)[:, 12:16].copy().view('<u4')
    np.testing.assert_array_equal(rgb_u32[:, 0], packed)


def test_nan_points_survive_and_can_be_skipped():
    p, c, f, v = _cloud(100)
    p[5] = np.nan
    p[17, 2] = np.inf
    data, fields, step = C.pack_cloud(p, c, f, v)
    out = C.unpack_cloud(data, fields, step)
    np.testing.assert_array_equal(out.points, p)  # NaN positions compare equal here
    assert np.isnan(out.points[5]).all()
    kept = C.unpack_cloud(data, fields, step, skip_nans=True)
    assert len(kept) == 98
    np.testing.assert_array_equal(kept.colors, np.delete(c, [5, 17], axis=0))


def test_empty_and_single_point():
    data, fields, step = C.pack_cloud(np.zeros((0, 3), np.float32), np.zeros((0, 3), np.uint8))
    assert len(data) == 0
    out = C.unpack_cloud(data, fields, step)
    assert len(out) == 0 and out.points.shape == (0, 3) and out.colors.shape == (0, 3)
    one = C.unpack_cloud(*C.pack_cloud([[1.0, 2.0, 3.0]], np.array([[9, 8, 7]], np.uint8)))
    assert one.points.tolist() == [[1.0, 2.0, 3.0]] and one.colors.tolist() == [[9, 8, 7]]
    assert one.confidence.tolist() == [1.0] and one.view.tolist() == [0]
    assert len(C.voxel_downsample(*one, voxel=0.1)) == 1
    assert len(C.voxel_downsample(*C.CloudArrays.empty(), voxel=0.1)) == 0
    assert C.chunk_ranges(0, 10) == []


def test_float64_points_and_scalar_fields():
    p, c, _, _ = _cloud(50)
    out = C.unpack_cloud(*C.pack_cloud(p.astype(np.float64), c, 2.0, 3))
    np.testing.assert_array_equal(out.points, p)
    assert (out.confidence == 2.0).all() and (out.view == 3).all()


@pytest.mark.parametrize('bad, match', [
    ({'points': np.zeros((4, 2), np.float32)}, r'points must be \[N, 3\]'),
    ({'colors': np.zeros((4, 3), np.float32)}, 'colors must be uint8'),
    ({'colors': np.zeros((3, 3), np.uint8)}, r'colors must be \[N, 3\]'),
    ({'confidence': np.zeros(5, np.float32)}, 'confidence must be'),
    ({'view': np.full(4, 70000)}, 'uint16'),
    ({'view': -1}, 'view must be an integer'),
])
def test_bad_input_names_the_argument(bad, match):
    args = {'points': np.zeros((4, 3), np.float32), 'colors': np.zeros((4, 3), np.uint8),
            'confidence': None, 'view': None}
    args.update(bad)
    with pytest.raises(ValueError, match=match):
        C.pack_cloud(**args)


def test_unpack_rejects_inconsistent_buffers():
    data, fields, step = C.pack_cloud(*_cloud(10))
    with pytest.raises(ValueError, match='not a multiple of point_step'):
        C.unpack_cloud(bytes(data)[:-3], fields, step, source='/topic')
    with pytest.raises(ValueError, match="/topic: no 'z' field"):
        C.unpack_cloud(data, [f for f in fields if f.name != 'z'], step, source='/topic')
    with pytest.raises(ValueError, match='does not fit in point_step'):
        C.unpack_cloud(data, list(fields) + [C.FieldSpec('w', 22, C.FLOAT32)], step)


def test_unpack_foreign_layout():
    """A cloud with only x, y, z (float64) and an rgba uint32, point_step 32."""
    n = 20
    dt = np.dtype({'names': ['x', 'y', 'z', 'rgba'], 'formats': ['<f8'] * 3 + ['<u4'],
                   'offsets': [0, 8, 16, 24], 'itemsize': 32})
    arr = np.zeros(n, dt)
    rng = np.random.default_rng(3)
    xyz = rng.normal(size=(n, 3))
    arr['x'], arr['y'], arr['z'] = xyz.T
    arr['rgba'] = 0xFF000000 | 0x00A0B0C0
    fields = [C.FieldSpec('x', 0, C.FLOAT64), C.FieldSpec('y', 8, C.FLOAT64),
              C.FieldSpec('z', 16, C.FLOAT64), C.FieldSpec('rgba', 24, C.UINT32)]
    out = C.unpack_cloud(arr.tobytes(), fields, 32)
    np.testing.assert_allclose(out.points, xyz.astype(np.float32))
    assert (out.colors == [0xA0, 0xB0, 0xC0]).all()
    assert (out.confidence == 1.0).all() and (out.view == 0).all()


def test_voxel_downsample_averages_and_keeps_extents():
    # Two points per voxel with known means, plus one lone point.
    points = np.array([[0.01, 0.01, 0.01], [0.03, 0.05, 0.07],
                       [1.02, 0.0, 0.0], [1.04, 0.02, 0.08],
                       [2.0, 2.0, 2.0]], np.float32)
    colors = np.array([[0, 10, 255], [100, 20, 0], [1, 1, 1], [2, 2, 2], [7, 8, 9]], np.uint8)
    conf = np.array([1, 3, 2, 4, 5], np.float32)
    view = np.array([4, 1, 2, 2, 3], np.uint16)
    out = C.voxel_downsample(points, colors, conf, view, voxel=0.1)
    assert len(out) == 3
    order = np.argsort(out.points[:, 0])
    p, c, f, v = (a[order] for a in out)
    np.testing.assert_allclose(p[0], [0.02, 0.03, 0.04], atol=1e-6)
    np.testing.assert_allclose(p[1], [1.03, 0.01, 0.04], atol=1e-6)
    assert c[0].tolist() == [50, 15, 128]  # rounded means
    assert c[1].tolist() == [2, 2, 2]  # 1.5 rounds half up
    assert f.tolist() == [2.0, 3.0, 5.0]
    assert v.tolist() == [4, 2, 3]  # view of the lowest-index point of each voxel


def test_voxel_downsample_large_cloud_extents():
    p, c, f, v = _cloud(20000, seed=2)
    p[3] = np.nan
    out = C.voxel_downsample(p, c, f, v, voxel=0.25)
    finite = p[np.isfinite(p).all(1)]
    lo, hi = finite.min(0), finite.max(0)
    assert 0 < len(out) < len(finite)
    assert (out.points >= lo - 1e-6).all() and (out.points <= hi + 1e-6).all()
    # Extents shrink by less than one voxel on each side.
    assert (out.points.min(0) - lo < 0.25).all() and (hi - out.points.max(0) < 0.25).all()
    # Colors stay within range and the average of all colors is (nearly) preserved per voxel.
    assert abs(float(out.confidence.mean()) - float(f.mean())) < 0.5
    assert np.isfinite(out.points).all()
    with pytest.raises(ValueError, match='voxel must be'):
        C.voxel_downsample(p, c, f, v, voxel=0.0)


def test_point_budget():
    p, c, f, v = _cloud(30000, seed=4)
    same, voxel = C.point_budget(p, c, f, v, max_points=30000)
    assert voxel == 0.0 and len(same) == 30000
    small, voxel = C.point_budget(p, c, f, v, max_points=2000)
    assert 0 < len(small) <= 2000 and voxel > 0
    tiny, _ = C.point_budget(p, c, f, v, max_points=1)
    assert len(tiny) == 1


def test_confidence_filter_global_and_per_view():
    conf = np.concatenate([np.arange(100, dtype=np.float32),
                           1000 + np.arange(100, dtype=np.float32)])
    view = np.repeat([0, 1], 100).astype(np.uint16)
    glob = C.confidence_filter(conf, 50.0)
    assert glob.sum() == 100 and glob[100:].all()  # view 1 has all the high values
    per = C.confidence_filter(conf, 50.0, view=view)
    assert per[:100].sum() == 50 and per[100:].sum() == 50
    assert per[50:100].all() and not per[:50].any()
    conf[0] = np.nan
    assert not C.confidence_filter(conf, 0.0)[0]
    with pytest.raises(ValueError):
        C.confidence_filter(conf, 100.0)


def test_chunk_info_encode_decode():
    info = C.ChunkInfo(recon=12, index=3, count=0, last=True)
    name = info.encode()
    assert name == 'aetherscan_chunk:recon=12:index=3:count=0:last=1'
    assert C.ChunkInfo.decode(name) == info
    assert C.ChunkInfo.decode(name + ':future=5') == info  # forward compatible
    assert C.ChunkInfo.from_fields(C.cloud_fields(info)) == info
    assert C.ChunkInfo.from_fields(C.CLOUD_FIELDS) is None
    f = info.field()
    assert (f.offset, f.datatype, f.count) == (22, C.UINT8, 1)
    for bad in ('aetherscan_chunk:index=1', 'aetherscan_chunk:recon=x:index=1', 'rgb'):
        with pytest.raises(ValueError):
            C.ChunkInfo.decode(bad)
    with pytest.raises(ValueError):
        C.ChunkInfo(1, 5, count=5)
    with pytest.raises(ValueError):
        C.ChunkInfo(1, 2, count=5, last=True)


def test_chunk_ranges():
    assert C.chunk_ranges(10, 4) == [(0, 4), (4, 8), (8, 10)]
    assert C.chunk_ranges(8, 4) == [(0, 4), (4, 8)]
    assert C.chunk_points_for_bytes(24 * 1000 + 5) == 1000
    with pytest.raises(ValueError):
        C.chunk_ranges(5, 0)


def _views(n_views=5, seed=0):
    rng = np.random.default_rng(seed)
    out = []
    for view in range(n_views):
        m = int(rng.integers(0, 700))
        p = rng.normal(size=(m, 3)).astype(np.float32)
        c = rng.integers(0, 256, (m, 3), dtype=np.uint8)
        f = rng.uniform(0, 1, m).astype(np.float32)
        out.append((p, c, f, view))
    return out


def _expected(views):
    return C.CloudArrays.concatenate([C.as_cloud(*v) for v in views])


def _assert_same(a, b):
    for x, y in zip(a, b):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


@pytest.mark.parametrize('known_total', [False, True])
def test_stream_and_reassemble_through_bytes_out_of_order(known_total):
    views = _views()
    full = _expected(views)
    stream = C.ChunkStream(7, 256, total_points=len(full) if known_total else None)
    packed = []
    for view in views:
        for info, chunk in stream.add(*view):
            assert len(chunk) <= 256
            packed.append(C.pack_cloud(*chunk, chunk_info=info))
    packed += [C.pack_cloud(*chunk, chunk_info=info) for info, chunk in stream.finish()]
    infos = [C.ChunkInfo.from_fields(f) for _, f, _ in packed]
    assert [i.index for i in infos] == list(range(len(infos)))
    assert infos[-1].last and all(not i.last for i in infos[:-1])
    if known_total:
        assert all(i.count == len(infos) for i in infos)
        assert all(len(C.unpack_cloud(*p)) == 256 for p in packed[:-1])
    else:
        assert all(i.count == 0 for i in infos)
    rng = np.random.default_rng(1)
    asm = C.ChunkAssembler()
    results = [asm.add_packed(*packed[i]) for i in rng.permutation(len(packed))]
    done = [r for r in results if r is not None]
    assert len(done) == 1 and results[-1] is not None
    _assert_same(done[0], full)
    assert asm.completed == 1


def test_assembler_drops_older_reconstruction_and_duplicates():
    asm = C.ChunkAssembler()
    a = C.as_cloud(*_cloud(5, seed=1)[:3], view=0)
    b = C.as_cloud(*_cloud(6, seed=2)[:3], view=1)
    assert asm.add(C.ChunkInfo(1, 0, 2), a) is None
    # A newer reconstruction starts: reconstruction 1 is dropped unfinished.
    assert asm.add(C.ChunkInfo(2, 1, 0, last=True), b) is None
    assert asm.dropped_incomplete == 1
    assert asm.add(C.ChunkInfo(1, 1, 2, last=True), b) is None  # stale
    assert asm.ignored_stale == 1
    assert asm.add(C.ChunkInfo(2, 1, 0, last=True), b) is None  # duplicate
    assert asm.add(C.ChunkInfo(2, 5, 0), a) is None  # beyond the last chunk
    assert asm.rejected == 1
    full = asm.add(C.ChunkInfo(2, 0, 0), a)
    _assert_same(full, C.CloudArrays.concatenate([a, b]))
    assert asm.add(C.ChunkInfo(2, 0, 0), a) is None  # after completion
    whole = C.as_cloud(*_cloud(3)[:2])
    assert asm.add(None, whole) is whole


def test_stream_known_total_checks_counts():
    stream = C.ChunkStream(1, 4, total_points=6)
    p, c, f, _ = _cloud(5)
    out = stream.add(p, c, f, 0)
    assert [i.index for i, _ in out] == [0]
    with pytest.raises(ValueError, match='5 of the announced 6'):
        stream.finish()
    stream = C.ChunkStream(1, 4, total_points=3)
    with pytest.raises(ValueError, match='more than the announced'):
        stream.add(p, c, f, 0)
    empty = C.ChunkStream(2, 4, total_points=0).finish()
    assert len(empty) == 1 and empty[0][0] == C.ChunkInfo(2, 0, 1, True)
