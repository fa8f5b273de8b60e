# Copyright 2026 The AetherScan ROS Authors
# SPDX-License-Identifier: Apache-2.0
"""The own TF buffer against ground truth built independently with scipy's Rotation and Slerp."""

import threading
import time

import numpy as np
import pytest
from scipy.spatial.transform import Rotation, Slerp

from aetherscan_ros.core.tf_buffer import (
    TfArgumentError, TfBuffer, TfConnectivityError, TfExtrapolationError, TfInputError,
    TfLookupError, TfUnknownFrameError)

SEC = 1_000_000_000


def _matrix(rot: Rotation, trans) -> np.ndarray:
    out = np.eye(4)
    out[:3, :3] = rot.as_matrix()
    out[:3, 3] = trans
    return out


def _put(buf, parent, child, stamp_ns, rot, trans, static=False):
    assert buf.set_transform(parent, child, stamp_ns, list(trans), rot.as_quat(), static=static)


def _random_poses(n, seed):
    rng = np.random.default_rng(seed)
    return [(Rotation.random(random_state=seed + i), rng.uniform(-3, 3, 3)) for i in range(n)]


def test_chain_of_four_frames_matches_composed_ground_truth():
    """A chain map -> odom -> base -> camera -> optical: lookups equal the composed matrices."""
    names = ['map', 'odom', 'base', 'camera', 'optical']
    poses = _random_poses(4, seed=3)
    buf = TfBuffer()
    for (parent, child), (rot, trans) in zip(zip(names, names[1:]), poses):
        _put(buf, parent, child, 5 * SEC, rot, trans)
    truth = {names[0]: np.eye(4)}  # pose of each frame in map
    for i, (rot, trans) in enumerate(poses):
        truth[names[i + 1]] = truth[names[i]] @ _matrix(rot, trans)
    worst = 0.0
    for target in names:
        for source in names:
            expected = np.linalg.inv(truth[target]) @ truth[source]
            worst = max(worst, np.abs(buf.lookup(target, source, 5 * SEC) - expected).max())
    assert worst < 1e-12, worst
    # the matrix maps a point given in the source frame into the target frame
    point = np.array([0.3, -1.2, 2.5, 1.0])
    got = buf.lookup('map', 'optical', 5 * SEC) @ point
    assert np.allclose(got, truth['optical'] @ point, atol=1e-12)


def test_interpolation_matches_scipy_slerp_and_linear_translation():
    stamps = np.array([1.0, 1.4, 2.0, 2.5, 3.5])
    rots = Rotation.random(len(stamps), random_state=11)
    trans = np.random.default_rng(11).uniform(-2, 2, (len(stamps), 3))
    buf = TfBuffer()
    for i in (3, 0, 4, 2, 1):  # out of order on purpose
        _put(buf, 'odom', 'base', int(stamps[i] * SEC), rots[i], trans[i])
    slerp = Slerp(stamps, rots)
    worst_rot = worst_trans = 0.0
    for t in np.linspace(1.0, 3.5, 41):
        got = buf.lookup('odom', 'base', int(round(t * SEC)))
        expected_rot = slerp([t]).as_matrix()[0]
        expected_trans = np.array([np.interp(t, stamps, trans[:, k]) for k in range(3)])
        worst_rot = max(worst_rot, np.abs(got[:3, :3] - expected_rot).max())
        worst_trans = max(worst_trans, np.abs(got[:3, 3] - expected_trans).max())
    assert worst_rot < 1e-6 and worst_trans < 1e-9, (worst_rot, worst_trans)
    # the inverse lookup is the inverse matrix
    mid = int(2.2 * SEC)
    assert np.allclose(buf.lookup('base', 'odom', mid) @ buf.lookup('odom', 'base', mid),
                       np.eye(4), atol=1e-12)


@pytest.mark.parametrize('deg0, deg1', [(170.0, 190.0), (10.0, 30.0), (-100.0, 120.0)])
def test_slerp_takes_the_short_arc_when_quaternion_signs_disagree(deg0, deg1):
    """The second quaternion is sent negated (same rotation): mid-time stays on the short arc."""
    r0 = Rotation.from_euler('z', deg0, degrees=True)
    r1 = Rotation.from_euler('z', deg1, degrees=True)
    q1 = r1.as_quat()
    if np.dot(r0.as_quat(), q1) > 0:
        q1 = -q1
    assert np.dot(r0.as_quat(), q1) < 0
    buf = TfBuffer()
    _put(buf, 'odom', 'base', 1 * SEC, r0, [0, 0, 0])
    assert buf.set_transform('odom', 'base', 2 * SEC, [0, 0, 0], q1)
    got = buf.lookup('odom', 'base', int(1.5 * SEC))[:3, :3]
    short = (deg1 - deg0 + 180.0) % 360.0 - 180.0  # signed shortest difference
    expected = Rotation.from_euler('z', deg0 + short / 2, degrees=True).as_matrix()
    assert np.allclose(got, expected, atol=1e-9)
    assert np.allclose(got, Slerp([1.0, 2.0], Rotation.concatenate([r0, r1]))([1.5]).as_matrix(),
                       atol=1e-9)


def test_static_and_dynamic_edges_mixed():
    """Static edges hold at every stamp; the dynamic one limits the lookup to its data."""
    map_odom, cam = _random_poses(2, seed=21)
    buf = TfBuffer()
    _put(buf, 'map', 'odom', 0, *map_odom, static=True)
    _put(buf, 'base', 'cam', 0, *cam, static=True)
    rots = Rotation.random(2, random_state=5)
    trans = np.array([[0.0, 0.0, 0.0], [2.0, 1.0, 0.0]])
    _put(buf, 'odom', 'base', 10 * SEC, rots[0], trans[0])
    _put(buf, 'odom', 'base', 11 * SEC, rots[1], trans[1])
    t = 10.25
    base = _matrix(Slerp([10.0, 11.0], rots)([t])[0], trans[0] + 0.25 * (trans[1] - trans[0]))
    expected = _matrix(*map_odom) @ base @ _matrix(*cam)
    assert np.allclose(buf.lookup('map', 'cam', int(t * SEC)), expected, atol=1e-9)
    for stamp in (1, 5 * SEC, 10 ** 18):  # a static-only path works at any stamp
        assert np.allclose(buf.lookup('base', 'cam', stamp), _matrix(*cam), atol=1e-12)
    with pytest.raises(TfExtrapolationError):
        buf.lookup('map', 'cam', 12 * SEC)


def test_lookup_between_sibling_branches():
    """Two cameras under one base, a marker under odom: the walk meets at the common ancestor."""
    base0, base1, left, right, marker = _random_poses(5, seed=31)
    buf = TfBuffer()
    _put(buf, 'odom', 'base', 1 * SEC, *base0)
    _put(buf, 'odom', 'base', 3 * SEC, *base1)
    _put(buf, 'base', 'cam_left', 0, *left, static=True)
    _put(buf, 'base', 'cam_right', 0, *right, static=True)
    _put(buf, 'odom', 'marker', 2 * SEC, *marker)
    expected = np.linalg.inv(_matrix(*left)) @ _matrix(*right)
    assert np.allclose(buf.lookup('cam_left', 'cam_right', 2 * SEC), expected, atol=1e-12)
    slerp = Slerp([1.0, 3.0], Rotation.concatenate([base0[0], base1[0]]))
    base_mid = _matrix(slerp([2.0])[0], (base0[1] + base1[1]) / 2)
    expected = np.linalg.inv(_matrix(*marker)) @ base_mid @ _matrix(*left)
    assert np.allclose(buf.lookup('marker', 'cam_left', 2 * SEC), expected, atol=1e-9)
    assert buf.frames() == {'base': 'odom', 'cam_left': 'base', 'cam_right': 'base',
                            'marker': 'odom'}


def test_stamp_zero_is_the_latest_common_time():
    buf = TfBuffer()
    poses = _random_poses(5, seed=41)
    _put(buf, 'odom', 'base', 1 * SEC, *poses[0])
    _put(buf, 'odom', 'base', 3 * SEC, *poses[1])
    _put(buf, 'base', 'arm', 1 * SEC, *poses[2])
    _put(buf, 'base', 'arm', 2 * SEC, *poses[3])
    _put(buf, 'arm', 'tool', 0, *poses[4], static=True)
    assert buf.latest_common_time('odom', 'tool') == 2 * SEC
    assert np.allclose(buf.lookup('odom', 'tool', 0), buf.lookup('odom', 'tool', 2 * SEC))
    assert not np.allclose(buf.lookup('odom', 'tool', 0), buf.lookup('odom', 'tool', 1 * SEC))
    assert buf.latest_common_time('odom', 'base') == 3 * SEC
    assert buf.latest_common_time('arm', 'tool') == 0  # static only: any time
    assert np.allclose(buf.lookup('arm', 'tool', 0), _matrix(*poses[4]))


def test_extrapolation_errors_say_how_far_and_the_range():
    buf = TfBuffer()
    rot, trans = _random_poses(1, seed=51)[0]
    _put(buf, 'odom', 'base', 1 * SEC, rot, trans)
    _put(buf, 'odom', 'base', 2 * SEC, rot, trans)
    with pytest.raises(TfExtrapolationError) as future:
        buf.lookup('odom', 'base', 2 * SEC + 250_000_000)
    err = future.value
    assert (err.direction, err.amount_ns, err.earliest_ns, err.latest_ns) == (
        'future', 250_000_000, 1 * SEC, 2 * SEC)
    assert isinstance(err, ValueError) and isinstance(err, TfLookupError)
    text = str(err)
    for part in ('0.250000000 s into the future', 'latest data is at time 2.000000000',
                 'from 1.000000000 to 2.000000000', '[base]', '[odom]'):
        assert part in text, text
    with pytest.raises(TfExtrapolationError, match=r'0\.500000000 s into the past') as past:
        buf.lookup('base', 'odom', 500_000_000)
    assert past.value.amount_ns == 500_000_000
    assert 'earliest data is at time 1.000000000' in str(past.value)
    _put(buf, 'base', 'cam', 4 * SEC, rot, trans)  # a single sample: only that exact time
    assert np.allclose(buf.lookup('base', 'cam', 4 * SEC), _matrix(rot, trans))
    with pytest.raises(TfExtrapolationError, match='only time 4.000000000 is in the buffer'):
        buf.lookup('base', 'cam', 4 * SEC + 1)


def test_unknown_frames_and_unconnected_trees():
    buf = TfBuffer()
    rot, trans = _random_poses(1, seed=61)[0]
    _put(buf, 'odom', 'base', 1 * SEC, rot, trans)
    _put(buf, 'map', 'landmark', 1 * SEC, rot, trans)
    with pytest.raises(TfUnknownFrameError, match='"nowhere" passed to lookupTransform '
                       'argument source_frame does not exist'):
        buf.lookup('odom', 'nowhere', 1 * SEC)
    with pytest.raises(TfConnectivityError, match='not part of the same tree') as err:
        buf.lookup('base', 'landmark', 1 * SEC)
    assert "'odom'" in str(err.value) and "'map'" in str(err.value)
    ok, reason = buf.can_transform('odom', 'landmark', 1 * SEC)
    assert not ok and 'unconnected trees' in reason
    assert buf.can_transform('odom', 'base', 1 * SEC) == (True, '')
    assert np.array_equal(buf.lookup('x', 'x', 7), np.eye(4))  # identity, like tf2


@pytest.mark.parametrize('target, source, stamp, match', [
    ('', 'base', 1, 'cannot be empty'),
    ('odom', '/base', 1, "cannot start with a '/'"),
    ('odom', None, 1, 'frame ids are strings'),
    ('odom', 'base', -1, '>= 0'),
    ('odom', 'base', 1.5, 'integer nanoseconds'),
    ('odom', 'base', np.float64(1.0), 'integer nanoseconds'),
    ('odom', 'base', 'now', 'integer nanoseconds'),
])
def test_invalid_lookup_arguments_are_lookup_errors(target, source, stamp, match):
    buf = TfBuffer()
    _put(buf, 'odom', 'base', 1, Rotation.identity(), [0, 0, 0])
    with pytest.raises(TfArgumentError, match=match) as err:
        buf.lookup(target, source, stamp)
    assert buf.can_transform(target, source, stamp) == (False, str(err.value))
    with pytest.raises(TfArgumentError):
        buf.wait_for(target, source, stamp, timeout_s=5.0)  # at once, not after 5 s


def test_cache_expiry_bounds_memory_and_refuses_old_data():
    buf = TfBuffer(cache_time_s=1.0)
    rot = Rotation.identity()
    _put(buf, 'map', 'odom', 0, rot, [1, 2, 3], static=True)
    for i in range(5000):  # 50 s at 100 Hz
        _put(buf, 'odom', 'base', i * 10_000_000, rot, [i * 0.01, 0, 0])
    newest = 4999 * 10_000_000
    assert buf.sample_count('base') == 101  # [newest - 1 s, newest]
    assert buf.sample_count('odom') == 1
    assert np.isclose(buf.lookup('odom', 'base', newest - SEC)[0, 3], 48.99)
    with pytest.raises(TfExtrapolationError, match='into the past'):
        buf.lookup('odom', 'base', newest - SEC - 1)
    assert not buf.set_transform('odom', 'base', newest - 2 * SEC, [0, 0, 0], [0, 0, 0, 1])
    assert buf.sample_count('base') == 101
    # a late sample inside the window is kept, in order; the static edge never expires
    assert buf.set_transform('odom', 'base', newest - 5_000_000, [7, 0, 0], [0, 0, 0, 1])
    assert buf.sample_count('base') == 102
    assert np.isclose(buf.lookup('odom', 'base', newest - 5_000_000)[0, 3], 7.0)
    assert np.allclose(buf.lookup('map', 'odom', newest)[:3, 3], [1, 2, 3])
    # a sample at a known stamp replaces it
    assert buf.set_transform('odom', 'base', newest, [9, 0, 0], [0, 0, 0, 1])
    assert buf.sample_count('base') == 102 and buf.lookup('odom', 'base', newest)[0, 3] == 9.0


def test_reparenting_replaces_the_parent_and_refuses_loops():
    buf = TfBuffer()
    rot, trans = _random_poses(1, seed=71)[0]
    _put(buf, 'odom', 'base', 1 * SEC, rot, trans)
    _put(buf, 'odom', 'base', 2 * SEC, rot, trans)
    _put(buf, 'base', 'cam', 0, rot, trans, static=True)
    _put(buf, 'map', 'base', 3 * SEC, Rotation.identity(), [5, 0, 0])
    assert buf.frames()['base'] == 'map' and buf.sample_count('base') == 1
    assert np.allclose(buf.lookup('map', 'cam', 3 * SEC), _matrix(Rotation.identity(), [5, 0, 0])
                       @ _matrix(rot, trans))
    with pytest.raises(TfConnectivityError):
        buf.lookup('odom', 'base', 3 * SEC)
    # an older sample for the old parent arriving late does not move the frame back
    assert not buf.set_transform('odom', 'base', int(2.5 * SEC), [0, 0, 0], [0, 0, 0, 1])
    assert buf.frames()['base'] == 'map'
    with pytest.raises(TfInputError, match='would close a loop'):
        buf.set_transform('cam', 'map', 3 * SEC, [0, 0, 0], [0, 0, 0, 1])
    assert 'map' not in buf.frames()
    # switching a frame from dynamic to static drops its history
    _put(buf, 'map', 'base', 0, Rotation.identity(), [6, 0, 0], static=True)
    assert buf.sample_count('base') == 1
    assert np.allclose(buf.lookup('map', 'base', 123)[:3, 3], [6, 0, 0])


def test_wait_for_returns_when_another_thread_inserts():
    buf = TfBuffer()
    rot, trans = _random_poses(1, seed=81)[0]
    _put(buf, 'odom', 'base', 1 * SEC, rot, [0, 0, 0])

    def publish():
        time.sleep(0.15)
        _put(buf, 'odom', 'base', 3 * SEC, rot, trans)

    thread = threading.Thread(target=publish)
    start = time.monotonic()
    thread.start()
    got = buf.wait_for('odom', 'base', 2 * SEC, timeout_s=5.0)
    elapsed = time.monotonic() - start
    thread.join()
    assert 0.1 <= elapsed < 2.0, elapsed
    assert np.allclose(got, _matrix(rot, np.asarray(trans) / 2), atol=1e-12)


def test_wait_for_fails_with_the_reason_after_the_timeout():
    buf = TfBuffer(cache_time_s=2.0)
    _put(buf, 'odom', 'base', 1 * SEC, Rotation.identity(), [0, 0, 0])
    _put(buf, 'odom', 'base', 10 * SEC, Rotation.identity(), [0, 0, 0])
    start = time.monotonic()
    with pytest.raises(TfExtrapolationError, match=r'into the future.*after waiting 0\.200 s'):
        buf.wait_for('odom', 'base', 11 * SEC, timeout_s=0.2)
    assert 0.2 <= time.monotonic() - start < 1.5
    start = time.monotonic()
    with pytest.raises(TfUnknownFrameError, match='after waiting'):
        buf.wait_for('odom', 'cam', 10 * SEC, timeout_s=0.05)
    assert time.monotonic() - start < 1.0
    # older than the cache window of the edge: no late sample could ever be stored, fail at once
    start = time.monotonic()
    with pytest.raises(TfExtrapolationError, match='waiting cannot help'):
        buf.wait_for('odom', 'base', 7 * SEC, timeout_s=5.0)
    assert time.monotonic() - start < 0.5
    with pytest.raises(TfArgumentError):
        buf.wait_for('odom', 'base', 10 * SEC, timeout_s=float('nan'))
    # an injected clock sets the deadline: already past, so one try and the reason
    with pytest.raises(TfExtrapolationError, match='after waiting'):
        buf.wait_for('odom', 'base', 11 * SEC, timeout_s=100.0,
                     clock=iter([0.0, 1000.0]).__next__)


def test_lookups_stay_consistent_while_another_thread_inserts():
    buf = TfBuffer(cache_time_s=0.5)
    # the first sample at 1 ms, not 0: a lookup at stamp 0 means 'the latest', which moves
    _put(buf, 'odom', 'base', 1_000_000, Rotation.identity(), [1e-3, 0, 0])
    errors = []

    def publish():
        for i in range(2, 2000):
            buf.set_transform('odom', 'base', i * 1_000_000, [i * 1e-3, 0, 0], [0, 0, 0, 1])

    thread = threading.Thread(target=publish)
    thread.start()
    checked = 0
    while thread.is_alive() or checked == 0:
        stamp = buf.latest_common_time('odom', 'base')
        try:
            x = buf.lookup('odom', 'base', stamp)[0, 3]
        except TfLookupError as exc:  # never happens: the latest sample stays in the window
            errors.append(str(exc))
            break
        if not np.isclose(x, stamp * 1e-9):
            errors.append(f'{x} at {stamp}')
        checked += 1
    thread.join()
    assert not errors and checked > 0, errors[:3]
    assert buf.sample_count('base') <= 501


@pytest.mark.parametrize('parent, child, stamp, trans, quat, match', [
    ('', 'base', 1, [0, 0, 0], [0, 0, 0, 1], 'cannot be empty'),
    ('odom', '', 1, [0, 0, 0], [0, 0, 0, 1], 'cannot be empty'),
    ('/odom', 'base', 1, [0, 0, 0], [0, 0, 0, 1], "cannot start with a '/'"),
    ('odom', 'odom', 1, [0, 0, 0], [0, 0, 0, 1], 'TF_SELF_TRANSFORM'),
    ('odom', 'base', 1, [np.nan, 0, 0], [0, 0, 0, 1], 'TF_NAN_INPUT'),
    ('odom', 'base', 1, [0, 0, 0], [0, np.inf, 0, 1], 'TF_NAN_INPUT'),
    ('odom', 'base', 1, [0, 0, 0], [0, 0, 0, 0], 'zero quaternion'),
    ('odom', 'base', 1, [0, 0], [0, 0, 0, 1], r'translation of "base" must be \[3\]'),
    ('odom', 'base', 1, [0, 0, 0], [[0, 0, 0, 1]], r'rotation of "base" must be \[4\]'),
    ('odom', 'base', 1, ['a', 0, 0], [0, 0, 0, 1], 'must be'),
    ('odom', 'base', 1, None, [0, 0, 0, 1], 'must be'),
    ('odom', 'base', -5, [0, 0, 0], [0, 0, 0, 1], '>= 0'),
    ('odom', 'base', 1.0, [0, 0, 0], [0, 0, 0, 1], 'integer nanoseconds'),
    ('odom', 'base', True, [0, 0, 0], [0, 0, 0, 1], 'integer nanoseconds'),
])
def test_set_transform_refuses_bad_input(parent, child, stamp, trans, quat, match):
    buf = TfBuffer()
    with pytest.raises(TfInputError, match=match):
        buf.set_transform(parent, child, stamp, trans, quat)
    assert buf.frames() == {}


def test_quaternions_are_normalised_and_numpy_stamps_accepted():
    buf = TfBuffer()
    rot = Rotation.from_rotvec([0.3, -0.2, 0.9])
    assert buf.set_transform('odom', 'base', np.int64(5), [1, 2, 3], 3.7 * rot.as_quat())
    got = buf.lookup('odom', 'base', np.int64(5))
    assert np.allclose(got, _matrix(rot, [1, 2, 3]), atol=1e-12)
    assert np.allclose(got[:3, :3] @ got[:3, :3].T, np.eye(3), atol=1e-12)
    # scaled quaternions interpolate like the unit ones
    other = Rotation.from_rotvec([-0.5, 0.4, 0.1])
    assert buf.set_transform('odom', 'base', 15, [1, 2, 3], 0.2 * other.as_quat())
    expected = Slerp([5, 15], Rotation.concatenate([rot, other]))([10]).as_matrix()[0]
    assert np.allclose(buf.lookup('odom', 'base', 10)[:3, :3], expected, atol=1e-9)
    for bad in (0.0, -1.0, float('inf'), float('nan')):
        with pytest.raises(ValueError, match='cache_time_s'):
            TfBuffer(cache_time_s=bad)
    buf.clear()
    assert buf.frames() == {} and buf.sample_count('base') == 0
