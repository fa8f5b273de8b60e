# Copyright 2026 The AetherScan ROS Authors
# SPDX-License-Identifier: Apache-2.0
"""
Benchmark of the classical backend: time, points and accuracy for 2/8/16 views at 640x480.

One demo-scene orbit of 16 views is rendered once; the 2- and 8-view cases are its first views
(ground truth recomputed for the subset). Each case is reconstructed once with known intrinsics
(these runs take seconds to minutes on a small CPU; repeating them would not change the
picture). The baseline, measured in the same run on the same views, is the sparse-only pipeline
(COLMAP features, matching and mapping without the dense stage): ``ratio`` = full / sparse time,
the price of densification. Accuracy figures come from
:func:`aetherscan_ros.demo.evaluation.evaluate`.

``quick`` uses 320x240 and 2/8 views.
"""

import os
import time

from aetherscan_ros.backends.classical import ClassicalBackend
from aetherscan_ros.demo.evaluation import evaluate
from aetherscan_ros.demo.scene import make_scene, subset


def _timed(backend, frames):
    start = time.perf_counter()
    result = backend.reconstruct(frames)
    return time.perf_counter() - start, result


def run(quick: bool):
    """Return the benchmark rows (see ``bench/run_all.py`` for the keys)."""
    width, height = (320, 240) if quick else (640, 480)
    counts = (2, 8) if quick else (2, 8, 16)
    scene = make_scene(num_views=max(counts), width=width, height=height, seed=0)
    threads = os.cpu_count()
    rows = []
    for num in counts:
        part = subset(scene, range(num)) if num < scene.num_views else scene
        frames = part.frames(with_intrinsics=True)
        sparse_s, _ = _timed(ClassicalBackend(dense=False), frames)
        full_s, result = _timed(ClassicalBackend(), frames)
        scores = evaluate(result, part)
        stages = ', '.join(f'{k} {v:.1f}s' for k, v in result.timings.items() if k != 'total')
        rows.append({
            'group': 'classical',
            'what': f'reconstruct {num} views, known K',
            'size': f'{width}x{height}',
            'median_s': full_s,
            'throughput': f'{result.num_points:,} pts, {num / full_s:.2f} views/s',
            'baseline': f'sparse only {sparse_s:.1f} s',
            'ratio': full_s / sparse_s,
            'notes': f'{stages}; CPU x{threads}',
        })
        rows.append({
            'group': 'classical',
            'what': f'accuracy {num} views',
            'size': f'{width}x{height}',
            'median_s': None,
            'throughput': f'{result.num_points:,} pts',
            'baseline': '',
            'ratio': None,
            'notes': (f'rot max {scores.rotation_error_deg_max:.3f} deg, centre max '
                      f'{scores.center_error_pct_max:.3f} %, accuracy {scores.accuracy_pct:.3f} '
                      f'%, completeness {scores.completeness_pct:.3f} % '
                      f'({100 * scores.completeness_ratio:.0f} % within 1 %) of extent '
                      f'{scores.extent:.2f} m; {result.info["registered_views"]}/{num} '
                      f'registered'),
        })
    return rows
