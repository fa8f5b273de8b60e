# Copyright 2026 The AetherScan ROS Authors
# SPDX-License-Identifier: Apache-2.0
"""
The C packer (aetherscan_ros/cloud/_cloudpack.c) against the numpy packer, buffer reuse, selection.

Both packers must write the same 24 bytes per point for every input the package accepts; the C
one also counts the points with a NaN/inf coordinate while packing (``is_dense``).
"""

import array
import gc
import os
from pathlib import Path
import shutil
import subprocess
import sys

import numpy as np
import pytest

from aetherscan_ros import cloud as C
from aetherscan_ros.cloud import packing as CP

REPO = Path(__file__).resolve().parents[1]
needs_c = pytest.mark.skipif(CP._CPACK is None, reason=f'C packer not in use: {C.PACKER}')


def _cloud(n, seed=0):
    rng = np.random.default_rng(seed)
    points = rng.normal(size=(n, 3)).astype(np.float32)
    colors = rng.integers(0, 256, (n, 3), dtype=np.uint8)
    conf = rng.uniform(1.0, 5.0, n).astype(np.float32)
    view = rng.integers(0, 65536, n).astype(np.uint16)
    return points, colors, conf, view


def _pack_with(fill, cloud, dirty=True):
    """Pack ``cloud`` with one packer into a buffer prefilled with 0xAB; return bytes, count."""
    buf = bytearray(b'\xab' * (len(cloud) * C.POINT_STEP)) if dirty \
        else bytearray(len(cloud) * C.POINT_STEP)
    count = fill(memoryview(buf), cloud) if len(cloud) else 0
    return bytes(buf), count


def _expected_bytes(points, colors, conf, view):
    """Build the layout independently of both packers (structured array, field by field)."""
    n = len(points)
    rec = np.zeros(n, np.dtype({'names': ['xyz', 'rgb', 'c', 'v'],
                                'formats': [('<f4', 3), '<u4', '<f4', '<u2'],
                                'offsets': [0, 12, 16, 20], 'itemsize': 24}))
    rec['xyz'] = points
    rec['rgb'] = (colors[:, 0].astype(np.uint32) << 16) | (colors[:, 1].astype(np.uint32) << 8) \
        | colors[:, 2]
    rec['c'] = conf
    rec['v'] = view
    return rec.tobytes()


def test_c_packer_is_built_where_a_compiler_exists():
    """`make setup` builds the extension; without it the node packs 3-8x slower."""
    if os.environ.get('AETHERSCAN_PACKER', 'auto') == 'numpy':
        pytest.skip('AETHERSCAN_PACKER=numpy forces the numpy packer')
    if not (shutil.which('cc') or shutil.which('gcc')) or sys.byteorder != 'little':
        pytest.skip('no C compiler or a big-endian host: the numpy packer is expected')
    assert C.PACKER == 'c', f'the C packer should have been built by make setup: {C.PACKER}'


@needs_c
@pytest.mark.parametrize('n', [1, 2, 3, 4, 5, 6, 7, 8, 9, 15, 16, 17, 1000, 4099])
def test_c_and_numpy_write_identical_bytes(n):
    """Every size around the 4-point SIMD step and its scalar tail; every byte written."""
    p, c, f, v = _cloud(n, seed=n)
    cloud = C.as_cloud(p, c, f, v)
    want = _expected_bytes(p, c, f, v)
    got_c, count = _pack_with(CP._fill_c, cloud)
    got_np, _ = _pack_with(CP._fill_numpy, cloud)
    assert got_c == want and got_np == want
    assert count == 0


@needs_c
def test_broadcast_scalars_strided_and_float64_inputs_agree():
    p, c, f, v = _cloud(1001, seed=5)
    cases = [
        C.as_cloud(p, c, 0.75, 42),                            # scalars broadcast (stride 0)
        C.as_cloud(p, c, f, 7),                                # one scalar, one array
        C.as_cloud(np.asfortranarray(p), np.asfortranarray(c), f[::-1], v[::-1]),  # strided
        C.as_cloud(p.astype(np.float64), c, f.astype(np.float64), v.astype(np.int64)),
        C.as_cloud(np.repeat(p, 2, axis=0)[::2], c, f, v),     # every other row of a bigger one
    ]
    for cloud in cases:
        want = _expected_bytes(np.asarray(cloud.points, np.float32), cloud.colors,
                               np.broadcast_to(cloud.confidence, (len(cloud),)),
                               np.broadcast_to(cloud.view, (len(cloud),)))
        assert _pack_with(CP._fill_c, cloud)[0] == want
        assert _pack_with(CP._fill_numpy, cloud)[0] == want


@needs_c
def test_nonfinite_points_are_counted_once_and_their_bits_kept():
    n = 4103
    p, c, f, v = _cloud(n, seed=9)
    rng = np.random.default_rng(1)
    bad_rows = rng.choice(n, 300, replace=False)
    specials = np.array([np.nan, np.inf, -np.inf], np.float32)
    for k, row in enumerate(bad_rows):  # one, two or three bad coordinates per point
        cols = rng.choice(3, 1 + k % 3, replace=False)
        p[row, cols] = specials[k % 3]
    p[-1] = [np.nan, 0.0, 0.0]  # the scalar tail
    # Finite extremes and a NaN with a payload: counted right, bits unchanged.
    p[0] = [np.finfo(np.float32).max, -0.0, np.finfo(np.float32).tiny / 4]
    payload_nan = np.array([0x7fc01234], np.uint32).view(np.float32)[0]
    p[1, 2] = payload_nan
    cloud = C.as_cloud(p, c, f, v)
    got, count = _pack_with(CP._fill_c, cloud)
    expected = int(n - np.isfinite(p).all(axis=1).sum())
    assert count == expected == len(set(bad_rows.tolist()) | {n - 1, 1})
    assert got == _expected_bytes(p, c, f, v)
    assert got[1 * 24 + 8:1 * 24 + 12] == np.uint32(0x7fc01234).tobytes()
    assert C.pack_into(bytearray(n * 24), cloud) == expected


@needs_c
def test_c_kernel_rejects_wrong_buffers_naming_them():
    p, c, f, v = _cloud(10)
    out = bytearray(10 * 24)
    with pytest.raises(ValueError, match='points has 108 bytes'):
        CP._CPACK.pack(out, p[:9], c, f, v)
    with pytest.raises(ValueError, match='colors'):
        CP._CPACK.pack(out, p, c[:5], f, v)
    with pytest.raises(ValueError, match='confidence'):
        CP._CPACK.pack(out, p, c, f[:3], v)
    with pytest.raises(ValueError, match='view'):
        CP._CPACK.pack(out, p, c, f, v[:3])
    with pytest.raises(ValueError, match='65535'):
        CP._CPACK.pack(out, p, c, f, 70000)
    with pytest.raises(ValueError, match='multiple of 24'):
        CP._CPACK.pack(bytearray(25), p, c, f, v)
    with pytest.raises((ValueError, BufferError), match='contiguous'):
        CP._CPACK.pack(out, np.repeat(p, 2, axis=0)[::2], c, f, v)  # the Python side copies
    with pytest.raises(BufferError, match='not writable'):
        CP._CPACK.pack(bytes(10 * 24), p, c, f, v)


def test_pack_into_checks_the_output_buffer():
    cloud = C.as_cloud(*_cloud(10))
    with pytest.raises(ValueError, match='240 bytes, got 239'):
        C.pack_into(bytearray(239), cloud)
    with pytest.raises(ValueError, match='read-only'):
        C.pack_into(bytes(240), cloud)
    assert C.pack_into(bytearray(0), C.CloudArrays.empty()) == 0


@pytest.mark.parametrize('packer', ['active', 'numpy'])
def test_parallel_slices_equal_one_pass(monkeypatch, packer):
    if packer == 'numpy':
        monkeypatch.setattr(CP, '_CPACK', None)
    n = CP._PARALLEL_MIN_POINTS + 4097
    p, c, f, v = _cloud(n, seed=2)
    p[n // 2] = np.nan  # a non-finite point at a slice boundary region
    monkeypatch.setattr(CP, '_PACK_THREADS', 3)
    parallel = bytearray(n * 24)
    count = C.pack_into(parallel, C.as_cloud(p, c, f, v))
    assert count == 1
    monkeypatch.setattr(CP, '_PACK_THREADS', 1)
    single = bytearray(n * 24)
    C.pack_into(single, C.as_cloud(p, c, f, v))
    assert parallel == single == _expected_bytes(p, c, f, v)


def test_numpy_packer_counts_nonfinite_only_when_asked(monkeypatch):
    monkeypatch.setattr(CP, '_CPACK', None)
    p, c, f, v = _cloud(50)
    p[3, 1] = np.inf
    assert C.pack_into(bytearray(50 * 24), C.as_cloud(p, c, f, v)) == 1
    assert C.pack_into(bytearray(50 * 24), C.as_cloud(p, c, f, v), count_nonfinite=False) is None


def test_pack_cloud_reuses_out_when_it_shrinks_and_grows():
    p, c, f, v = _cloud(3000, seed=4)
    buf = array.array('B', b'\xff' * (5000 * 24))  # larger and dirty
    data, _, _ = C.pack_cloud(p, c, f, v, out=buf)
    assert data is buf and bytes(buf) == _expected_bytes(p, c, f, v)
    p2, c2, f2, v2 = _cloud(4000, seed=5)
    data, _, _ = C.pack_cloud(p2, c2, f2, v2, out=buf)
    assert data is buf and bytes(buf) == _expected_bytes(p2, c2, f2, v2)
    with pytest.raises(TypeError, match='array.array'):
        C.pack_cloud(p, c, f, v, out=bytearray(10))


def test_message_buffer_never_overwrites_a_live_message():
    from aetherscan_ros.ros.pointcloud2 import MessageBuffer, to_pointcloud2

    pool = MessageBuffer()
    p, c, f, v = _cloud(100)
    first = to_pointcloud2((0, 'w'), p, c, f, v, out=pool.take())
    kept = bytes(first.data)
    second = to_pointcloud2((0, 'w'), p[::-1], c, f, v, out=pool.take())  # first still alive
    assert pool.allocated == 2 and pool.reused == 0
    assert bytes(first.data) == kept and first.data is not second.data
    held = second.data
    del first, second
    gc.collect()
    third = to_pointcloud2((0, 'w'), p, c, f, v, out=pool.take())  # `held` still refers to it
    assert third.data is not held and pool.allocated == 3
    del held, third
    gc.collect()
    again = pool.take()
    assert pool.reused == 1
    fourth = to_pointcloud2((0, 'w'), p, c, f, v, out=again)
    assert fourth.data is again and bytes(fourth.data) == kept


@pytest.mark.parametrize('packer', ['active', 'numpy'])
def test_to_pointcloud2_is_dense_from_the_packer(monkeypatch, packer):
    from aetherscan_ros.ros.pointcloud2 import to_pointcloud2

    if packer == 'numpy':
        monkeypatch.setattr(CP, '_CPACK', None)
    p, c, f, v = _cloud(37)
    assert to_pointcloud2((0, 'w'), p, c, f, v).is_dense
    p[36, 0] = np.nan
    assert not to_pointcloud2((0, 'w'), p, c, f, v).is_dense
    assert to_pointcloud2((0, 'w'), p[:0], c[:0], f[:0], v[:0]).is_dense


@pytest.mark.parametrize('choice, expected', [('numpy', 'numpy (AETHERSCAN_PACKER=numpy)'),
                                              ('bogus', None)])
def test_packer_selection_by_environment(choice, expected):
    env = dict(os.environ, AETHERSCAN_PACKER=choice)
    out = subprocess.run(
        [sys.executable, '-c', 'from aetherscan_ros import cloud; print(cloud.PACKER)'],
        env=env, cwd=REPO, capture_output=True, text=True, timeout=120, check=True)
    if expected is None:  # an unknown value falls back to auto, with a warning
        assert out.stdout.strip() == C.PACKER and 'AETHERSCAN_PACKER' in out.stderr
    else:
        assert out.stdout.strip() == expected


def test_hugepage_malloc_environment_keeps_other_tunables():
    from aetherscan_ros.core.process_env import hugepage_malloc_state, with_hugepage_malloc

    assert with_hugepage_malloc({}) == {'GLIBC_TUNABLES': 'glibc.malloc.hugetlb=1'}
    assert with_hugepage_malloc({'GLIBC_TUNABLES': 'glibc.malloc.arena_max=2'}) == {
        'GLIBC_TUNABLES': 'glibc.malloc.arena_max=2:glibc.malloc.hugetlb=1'}
    kept = {'GLIBC_TUNABLES': 'glibc.malloc.hugetlb=0'}  # the user's choice wins
    assert with_hugepage_malloc(kept) == kept
    state = hugepage_malloc_state(with_hugepage_malloc({}))
    assert state.startswith(('on', 'off (kernel THP mode never)')), state
    assert hugepage_malloc_state({}).startswith(('off', 'on (kernel THP mode always)'))


def test_plain_c_path_equals_the_sse2_path(tmp_path):
    """Build the kernel without SSE2 (the path of non-x86 hosts, e.g. Jetson) and compare."""
    import importlib.util
    import sysconfig

    compiler = shutil.which('gcc') or shutil.which('cc')
    include = sysconfig.get_paths()['include']
    if CP._CPACK is None or compiler is None or not Path(include, 'Python.h').is_file():
        pytest.skip('needs the built C packer, a C compiler and the Python headers')
    target = tmp_path / ('_cloudpack' + sysconfig.get_config_var('EXT_SUFFIX'))
    subprocess.run([compiler, '-O2', '-std=c99', '-U__SSE2__', '-shared', '-fPIC', f'-I{include}',
                    str(REPO / 'aetherscan_ros' / 'cloud' / '_cloudpack.c'), '-o', str(target)],
                   check=True, capture_output=True, timeout=120)
    spec = importlib.util.spec_from_file_location('_cloudpack', target)
    plain = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(plain)
    for n in (1, 5, 4099):
        p, c, f, v = _cloud(n, seed=n)
        p[n // 2, 1] = np.nan
        a, b = bytearray(n * 24), bytearray(n * 24)
        assert plain.pack(a, p, c, f, v) == CP._CPACK.pack(b, p, c, f, v) == 1
        assert a == b == _expected_bytes(p, c, f, v)
    a, b = bytearray(7 * 24), bytearray(7 * 24)
    p, c, _, _ = _cloud(7)
    plain.pack(a, p, c, 2.5, 9)
    CP._CPACK.pack(b, p, c, 2.5, 9)
    assert a == b
