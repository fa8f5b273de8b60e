# Copyright 2026 The AetherScan ROS Authors
# SPDX-License-Identifier: Apache-2.0
"""Keyframe selection, bounded window, busy policy and restore of the frame buffer."""

import threading

import numpy as np
import pytest

from aetherscan_ros.backends.base import Frame
from aetherscan_ros.core.buffer import (
    ACCEPTED, DROP_BUSY, FrameBuffer, SKIP_BACKWARDS, SKIP_DUPLICATE, SKIP_INTERVAL, SKIP_LATE,
    SKIP_SIMILAR, thumbnail)

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


# ---------------------------------------------------------------- capture_mode 'sets' (rigs)

RIG = ('/rig/left/image_raw', '/rig/right/image_raw')
LEFT, RIGHT = RIG


def _rig(max_views=2, **kwargs):
    return FrameBuffer(max_views=max_views, capture_mode='sets', sync_tolerance=0.01,
                       cameras=RIG, **kwargs)


def test_sets_form_by_stamp_within_the_tolerance():
    buf = _rig()
    assert buf.offer(_frame(1, 1.000, camera=LEFT)) == ACCEPTED
    assert len(buf) == 0  # an incomplete set is not buffered for a reconstruction
    assert buf.snapshot_counters()['pending'] == 1
    # 30 ms apart: a different moment (tolerance 10 ms)
    assert buf.offer(_frame(2, 1.030, camera=RIGHT)) == ACCEPTED
    assert len(buf) == 0 and buf.snapshot_counters()['pending'] == 2
    # 5 ms from the right frame: completes that set; the older incomplete one is superseded
    assert buf.offer(_frame(3, 1.035, camera=LEFT)) == ACCEPTED
    assert len(buf) == 2
    counters = buf.snapshot_counters()
    assert counters['pending'] == 0 and counters['sets_incomplete_dropped'] == 1
    taken = buf.take(2)
    assert [f.camera for f in taken] == list(RIG)  # camera order: view 0 is the left camera
    assert [round(f.stamp_ns / 1e6) for f in taken] == [1035, 1030]
    counters = buf.snapshot_counters()
    assert counters['sets_complete'] == 1 and counters['sets_taken'] == 1


def test_sets_out_of_order_arrival_across_cameras():
    buf = _rig(max_views=4)
    # the left frames of two moments first, then the right frame of the newer one
    assert buf.offer(_frame(1, 1.0, camera=LEFT)) == ACCEPTED
    assert buf.offer(_frame(2, 2.0, camera=LEFT)) == ACCEPTED
    assert len(buf) == 0
    assert buf.offer(_frame(3, 2.0, camera=RIGHT)) == ACCEPTED
    assert len(buf) == 2
    # the older set was superseded by a newer complete one: dropped, never mixed in
    counters = buf.snapshot_counters()
    assert counters['sets_incomplete_dropped'] == 1 and counters['pending'] == 0
    assert [(f.camera, f.stamp_ns) for f in buf.take(4)] == [(LEFT, 2 * SEC), (RIGHT, 2 * SEC)]


def test_sets_right_before_left_and_interleaved_moments():
    buf = _rig(max_views=4)
    for value, stamp, camera in ((1, 1.0, RIGHT), (2, 2.0, RIGHT), (3, 1.0, LEFT),
                                 (4, 2.0, LEFT)):
        assert buf.offer(_frame(value, stamp, camera=camera)) == ACCEPTED
    taken = buf.take(4)
    assert [(f.camera, f.stamp_ns // SEC) for f in taken] == [
        (LEFT, 1), (RIGHT, 1), (LEFT, 2), (RIGHT, 2)]
    assert buf.snapshot_counters().get('sets_incomplete_dropped', 0) == 0


def test_sets_newest_complete_set_is_taken_and_the_window_bounded():
    buf = _rig(max_views=3)  # floor(3 / 2) = 1 set
    for t in range(3):
        buf.offer(_frame(10 * t, float(t), camera=LEFT))
        buf.offer(_frame(10 * t + 1, float(t), camera=RIGHT))
    assert len(buf) == 2
    counters = buf.snapshot_counters()
    assert counters['sets_evicted'] == 2 and counters['evicted'] == 4
    taken = buf.take(3)
    assert [f.stamp_ns for f in taken] == [2 * SEC, 2 * SEC]


def test_sets_take_limit_counts_whole_sets():
    buf = _rig(max_views=6)
    for t in range(3):
        buf.offer(_frame(10 * t, float(t), camera=LEFT))
        buf.offer(_frame(10 * t + 1, float(t), camera=RIGHT))
    assert len(buf) == 6
    # 5 views allow 2 sets (never a half set), the newest ones
    assert [f.stamp_ns // SEC for f in buf.take(5)] == [1, 1, 2, 2]
    assert len(buf) == 2
    buf.done()
    # fewer views than cameras: still one whole set
    assert [f.camera for f in buf.take(1)] == list(RIG)


def test_sets_incomplete_set_is_not_taken_and_kept_until_it_completes():
    buf = _rig(max_views=4)
    buf.offer(_frame(1, 1.0, camera=LEFT))
    buf.offer(_frame(2, 1.0, camera=RIGHT))
    buf.offer(_frame(3, 2.0, camera=LEFT))  # the newer set waits for its right frame
    assert len(buf) == 2
    assert [f.stamp_ns // SEC for f in buf.take(4)] == [1, 1]  # only the complete one
    buf.done()
    assert buf.snapshot_counters()['pending'] == 1
    assert buf.offer(_frame(4, 2.0, camera=RIGHT)) == ACCEPTED
    assert [f.stamp_ns // SEC for f in buf.take(4)] == [2, 2]


def test_sets_min_views_counts_frames_of_complete_sets():
    buf = _rig(max_views=4)
    buf.offer(_frame(1, 1.0, camera=LEFT))
    buf.offer(_frame(2, 2.0, camera=LEFT))
    buf.offer(_frame(3, 3.0, camera=LEFT))
    assert len(buf) == 0  # three frames, no complete set: a reconstruction must wait
    buf.offer(_frame(4, 3.0, camera=RIGHT))
    assert len(buf) == 2


def test_sets_duplicates_and_a_dead_camera_are_bounded():
    buf = _rig(max_views=2)
    buf.offer(_frame(1, 1.0, camera=LEFT))
    assert buf.offer(_frame(2, 1.005, camera=LEFT)) == SKIP_DUPLICATE
    for t in range(2, 40):  # the right camera died: incomplete sets only
        buf.offer(_frame(t, float(t), camera=LEFT))
    counters = buf.snapshot_counters()
    assert counters['pending'] <= 8 and counters['sets_incomplete_dropped'] >= 30
    assert len(buf) == 0
    # the right camera comes back far behind: its frame of a dropped moment is late
    assert buf.offer(_frame(50, 2.0, camera=RIGHT)) == SKIP_LATE
    assert buf.offer(_frame(51, 39.0, camera=RIGHT)) == ACCEPTED
    assert len(buf) == 2


def test_sets_keyframe_rules_apply_to_whole_sets():
    buf = _rig(max_views=2, min_interval_s=0.5, min_change=0.05)
    buf.offer(_frame(1, 1.0, camera=LEFT))
    buf.offer(_frame(2, 1.0, camera=RIGHT))
    # too soon after the last set: both cameras get the same answer
    assert buf.precheck(LEFT, int(1.2 * SEC)) == SKIP_INTERVAL
    assert buf.offer(_frame(3, 1.2, camera=RIGHT)) == SKIP_INTERVAL
    # the same picture again from both cameras: the whole set is dropped as similar
    assert buf.offer(_frame(1, 2.0, camera=LEFT)) == ACCEPTED
    assert buf.offer(_frame(2, 2.0, camera=RIGHT)) == SKIP_SIMILAR
    # one camera sees a change: the set is kept (both frames)
    buf.offer(_frame(1, 3.0, camera=LEFT))
    assert buf.offer(_frame(7, 3.0, camera=RIGHT)) == ACCEPTED
    assert [f.stamp_ns // SEC for f in buf.take()] == [3, 3]
    assert buf.snapshot_counters()['sets_similar'] == 1


def test_sets_restore_puts_the_sets_back_and_backwards_restarts():
    buf = _rig(max_views=4)
    for t in (1.0, 2.0):
        buf.offer(_frame(int(t), t, camera=LEFT))
        buf.offer(_frame(int(t) + 10, t, camera=RIGHT))
    taken = buf.take(4)
    buf.offer(_frame(30, 3.0, camera=LEFT))  # arrived during the failed run
    buf.offer(_frame(31, 3.0, camera=RIGHT))
    buf.restore(taken)
    assert len(buf) == 4  # window of 2 sets: the oldest restored set evicted
    assert [f.stamp_ns // SEC for f in buf.take()] == [2, 2, 3, 3]
    buf.done()
    # a clock reset: the rig starts afresh, older stamps are accepted again
    assert buf.precheck(LEFT, 1 * SEC) == SKIP_BACKWARDS
    buf.note_skipped(LEFT, SKIP_BACKWARDS)
    assert buf.offer(_frame(40, 1.0, camera=LEFT)) == ACCEPTED
    assert buf.offer(_frame(41, 1.0, camera=RIGHT)) == ACCEPTED
    assert len(buf) == 2


def test_switching_capture_mode_keeps_the_frames():
    buf = FrameBuffer(max_views=4, cameras=RIG)
    for t in (1.0, 2.0):
        buf.offer(_frame(int(t), t, camera=LEFT))
    buf.offer(_frame(5, 2.0, camera=RIGHT))
    assert len(buf) == 3
    buf.configure(capture_mode='sets')
    assert len(buf) == 2 and buf.snapshot_counters()['pending'] == 1
    buf.configure(capture_mode='series')
    assert len(buf) == 3
    with pytest.raises(ValueError, match='capture_mode'):
        buf.configure(capture_mode='rig')
    with pytest.raises(ValueError, match='cameras'):
        FrameBuffer(max_views=2, capture_mode='sets')


def test_series_mode_still_mixes_moments_of_a_rig():
    """The default is unchanged: the newest frames by arrival, whatever moment they show."""
    buf = FrameBuffer(max_views=2, cameras=RIG)
    buf.offer(_frame(1, 1.0, camera=LEFT))
    buf.offer(_frame(2, 1.0, camera=RIGHT))
    buf.offer(_frame(3, 2.0, camera=LEFT))
    assert len(buf) == 2
    assert [(f.camera, f.stamp_ns // SEC) for f in buf.take()] == [(RIGHT, 1), (LEFT, 2)]
