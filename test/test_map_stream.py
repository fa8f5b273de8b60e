# Copyright 2026 The AetherScan ROS Authors
# SPDX-License-Identifier: Apache-2.0
"""
Issue 14, map delivery: the map-stream benchmark's pair of processes, and zero-copy reading.

Not a timing test: a small map stream (delta chunks + whole map per window) goes from one
process to another and arrives bit for bit; the benchmark rows have the right keys. The
throughput figures are ``python -m bench.run_all --only map_stream``.
"""

import numpy as np
import pytest

from aetherscan_ros.cloud import pack_cloud, unpack_cloud


def test_unpack_reads_colors_without_a_copy():
    rng = np.random.default_rng(0)
    points = rng.normal(size=(1000, 3)).astype(np.float32)
    colors = rng.integers(0, 256, (1000, 3), dtype=np.uint8)
    data, fields, step = pack_cloud(points, colors, 0.5, 3)
    cloud = unpack_cloud(data, fields, step)
    assert np.array_equal(cloud.colors, colors)
    assert np.shares_memory(cloud.colors, np.frombuffer(data, np.uint8))
    assert np.array_equal(cloud.copy().colors, colors)


@pytest.mark.ros
def test_map_stream_pair_delivers_every_window_exactly():
    from bench import bench_map_stream, run_all
    from aetherscan_ros.node.ros_domain import claim_domain_id

    domain, lock = claim_domain_id()
    try:
        r = bench_map_stream.run_map_pair(20_000, 4_000, 3, 1_500, True, domain,
                                          timeout_s=40.0)
    finally:
        lock.close()
    assert r['exact'] is True and r['tuned'] is True
    assert len(r['seconds']) == 3 and all(s is not None and s > 0 for s in r['seconds'])
    assert r['chunks_per_window'] == 3  # 4,000 points in chunks of 1,500
    row = bench_map_stream.map_row(r, 20_000, 4_000, 'map stream', 100.0)
    assert set(row) == set(run_all.ROW_KEYS) and row['ratio'] > 0
    assert 'exact' in row['notes']
