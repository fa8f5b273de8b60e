# Copyright 2026 The AetherScan ROS Authors
# SPDX-License-Identifier: Apache-2.0
"""Keyframe selection, bounded window, busy policy and restore of the frame buffer."""

import threading

import numpy as np
import pytest

from aetherscan_ros.backends.base import Frame
from aetherscan_ros.core.buffer import (
    ACCEPTED, DROP_BUSY, FrameBuffer, SKIP_BACKWARDS, SKIP_INTERVAL, SKIP_SIMILAR, thumbnail)

SEC = 1_000_000_000


def _frame(value, stamp_s, camera='/cam0/image', size=(40, 30)):
    rng = np.random.default_rng(int(value))
    image = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    return Frame(image=image, name=f'{camera}@{stamp_s}', stamp_ns=int(stamp_s * SEC),
                 camera=camera)


def test_thumbnail_shape_and_range():
    thumb = thumbnail(np.full((480, 640, 3), 255, np.uint8))
    assert thumb.shape == (24, 32) and thumb.dtype == np.float32
    assert np.allclose(thumb, 1.0, atol=1e-5)


def test_time_gap_and_change_per_camera():
    buf = FrameBuffer(max_views=10, min_interval_s=0.5, min_change=0.05)
    assert buf.offer(_frame(1, 0.0)) == ACCEPTED
    assert buf.offer(_frame(2, 0.2)) == SKIP_INTERVAL  # too soon
    same = _frame(1, 1.0)  # same pixels later
    assert buf.offer(same) == SKIP_SIMILAR
    assert buf.offer(_frame(3, 1.0)) == ACCEPTED
    # another camera has its own history
    assert buf.offer(_frame(4, 1.1, camera='/cam1/image')) == ACCEPTED
    assert len(buf) == 3
    counters = buf.snapshot_counters()
    assert counters['offered'] == 5 and counters['keyframe'] == 3
    assert counters[SKIP_INTERVAL] == 1 and counters[SKIP_SIMILAR] == 1


def test_precheck_matches_offer_and_backwards_resets():
    buf = FrameBuffer(max_views=10, min_interval_s=1.0)
    assert buf.precheck('/c', 0) is None
    buf.offer(_frame(1, 5.0, camera='/c'))
    assert buf.precheck('/c', int(5.5 * SEC)) == SKIP_INTERVAL
    assert buf.precheck('/c', int(4.0 * SEC)) == SKIP_BACKWARDS
    buf.note_skipped('/c', SKIP_BACKWARDS)
    # after a backwards jump the camera starts afresh
    assert buf.precheck('/c', int(4.0 * SEC)) is None
    assert buf.offer(_frame(2, 4.0, camera='/c')) == ACCEPTED
    assert buf.snapshot_counters()[SKIP_BACKWARDS] == 1


def test_window_is_bounded_oldest_evicted():
    buf = FrameBuffer(max_views=3)
    for i in range(5):
        assert buf.offer(_frame(i, float(i))) == ACCEPTED
    taken = buf.take()
    assert [f.stamp_ns for f in taken] == [2 * SEC, 3 * SEC, 4 * SEC]
    assert buf.snapshot_counters()['evicted'] == 2


def test_take_limit_keeps_older_and_sorts_by_stamp():
    buf = FrameBuffer(max_views=10)
    buf.offer(_frame(1, 3.0, camera='/a'))
    buf.offer(_frame(2, 1.0, camera='/b'))  # older stamp, arrived later
    buf.offer(_frame(3, 2.0, camera='/c'))
    taken = buf.take(limit=2)  # the two newest arrivals, ordered by stamp
    assert [f.camera for f in taken] == ['/b', '/c']
    assert [f.stamp_ns for f in taken] == [1 * SEC, 2 * SEC]
    assert len(buf) == 1 and buf.busy


def test_busy_policies():
    keep = FrameBuffer(max_views=4, busy_policy='buffer')
    keep.offer(_frame(1, 0.0))
    keep.take()
    assert keep.offer(_frame(2, 1.0)) == ACCEPTED  # buffered for the next reconstruction
    keep.done()
    assert len(keep) == 1

    drop = FrameBuffer(max_views=4, busy_policy='drop')
    drop.offer(_frame(1, 0.0))
    drop.take()
    assert drop.precheck('/cam0/image', 5 * SEC) == DROP_BUSY
    assert drop.offer(_frame(2, 1.0)) == DROP_BUSY
    drop.done()
    assert len(drop) == 0 and drop.snapshot_counters()[DROP_BUSY] == 1
    assert drop.offer(_frame(3, 2.0)) == ACCEPTED


def test_restore_after_failure_keeps_frames_in_front():
    buf = FrameBuffer(max_views=4)
    for i in range(3):
        buf.offer(_frame(i, float(i)))
    taken = buf.take()
    buf.offer(_frame(9, 9.0))  # arrived during the failed run
    buf.restore(taken)
    assert not buf.busy
    again = buf.take()
    assert [f.stamp_ns // SEC for f in again] == [0, 1, 2, 9]
    buf.restore(again)
    buf.offer(_frame(10, 10.0))  # overflow evicts the oldest
    assert [f.stamp_ns // SEC for f in buf.take()] == [1, 2, 9, 10]


def test_configure_and_clear():
    buf = FrameBuffer(max_views=5)
    for i in range(5):
        buf.offer(_frame(i, float(i)))
    buf.configure(max_views=2)
    assert len(buf) == 2
    assert buf.clear() == 2 and len(buf) == 0
    # the history is gone too: the same image is accepted again
    assert buf.offer(_frame(4, 4.0)) == ACCEPTED


def test_bad_arguments():
    with pytest.raises(ValueError, match='max_views'):
        FrameBuffer(max_views=0)
    with pytest.raises(ValueError, match='busy_policy'):
        FrameBuffer(max_views=2, busy_policy='queue')


def test_thread_safety_counts_every_offer():
    buf = FrameBuffer(max_views=8)
    frames = [[_frame(t * 100 + i, float(i), camera=f'/c{t}') for i in range(50)]
              for t in range(4)]

    def feed(items):
        for f in items:
            buf.offer(f)

    threads = [threading.Thread(target=feed, args=(items,)) for items in frames]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    counters = buf.snapshot_counters()
    assert counters['offered'] == 200 and counters['keyframe'] == 200
    assert counters['evicted'] == 192 and counters['buffered'] == 8
