# Copyright 2026 The AetherScan ROS Authors
# SPDX-License-Identifier: Apache-2.0
"""
Benchmark of the classical backend: time, points and accuracy per camera path and view count.

Two parts, each case reconstructed once with known intrinsics (these runs take seconds to
minutes on a small CPU; repeating them would not change the picture):

* View counts: one demo-scene orbit of 16 views at 640x480 is rendered once; the 2- and 8-view
  cases are its first views (ground truth recomputed for the subset). The baseline, measured
  in the same run on the same views, is the sparse-only pipeline (COLMAP features, matching
  and mapping without the dense stage): ``ratio`` = full / sparse time, the price of
  densification.
* Camera paths: ``orbit``, ``forward`` (driving ahead, the epipole inside the image) and
  ``narrow`` (about 1 degree of parallax between views), 8 views each at 320x240: points per
  view, time per view, which dense method ran and how many points repeat (there must be none).
  ``baseline`` and ``ratio`` compare the points per view with the orbit's.

Accuracy figures come from :func:`aetherscan_ros.demo.evaluation.evaluate`.

``quick`` uses 320x240 and 2/8 views for the first part, and 6 views per path.
"""

import os
import time

import numpy as np

from aetherscan_ros.backends.classical import ClassicalBackend
from aetherscan_ros.demo.evaluation import evaluate
from aetherscan_ros.demo.scene import make_scene, subset

PATHS = ('orbit', 'forward', 'narrow')


def _timed(backend, frames):
    start = time.perf_counter()
    result = backend.reconstruct(frames)
    return time.perf_counter() - start, result


def _accuracy_notes(scores, result, num) -> str:
    return (f'rot max {scores.rotation_error_deg_max:.3f} deg, centre max '
            f'{scores.center_error_pct_max:.3f} %, accuracy {scores.accuracy_pct:.3f} '
            f'%, completeness {scores.completeness_pct:.3f} % '
            f'({100 * scores.completeness_ratio:.0f} % within 1 %) of extent '
            f'{scores.extent:.2f} m; {result.info["registered_views"]}/{num} registered')


def duplicate_points(points: np.ndarray) -> int:
    """Return how many rows of ``points`` ``[N, 3]`` repeat an earlier row exactly."""
    if len(points) == 0:
        return 0
    return int(len(points) - len(np.unique(np.asarray(points), axis=0)))


def view_count_rows(quick: bool):
    """Rows for 2/8/16 orbit views (2/8 at 320x240 when ``quick``)."""
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
            'notes': _accuracy_notes(scores, result, num),
        })
    return rows


def path_rows(quick: bool, num: int = 0, width: int = 320, height: int = 240):
    """Rows per camera path: points and time per view, dense method, duplicates, accuracy."""
    num = num or (6 if quick else 8)
    rows = []
    orbit_ppv = None
    for path in PATHS:
        scene = make_scene(num_views=num, width=width, height=height, seed=0, path=path)
        seconds, result = _timed(ClassicalBackend(), scene.frames(with_intrinsics=True))
        scores = evaluate(result, scene)
        per_view = result.num_points / num
        orbit_ppv = per_view if path == 'orbit' else orbit_ppv
        dense_s = result.timings.get('densify', float('nan'))
        rows.append({
            'group': 'classical paths',
            'what': f'{path}, {num} views, known K',
            'size': f'{width}x{height}',
            'median_s': seconds,
            'throughput': (f'{per_view:,.0f} pts/view, {seconds / num:.2f} s/view '
                           f'(dense {dense_s / num:.2f} s/view)'),
            'baseline': f'orbit {orbit_ppv:,.0f} pts/view',
            'ratio': per_view / orbit_ppv if orbit_ppv else None,
            'notes': (f'{result.info.get("method")}; duplicates '
                      f'{duplicate_points(result.points)}; accuracy {scores.accuracy_pct:.3f} %, '
                      f'completeness {100 * scores.completeness_ratio:.0f} % within 1 %, '
                      f'{result.info["registered_views"]}/{num} registered; '
                      f'CPU x{os.cpu_count()}'),
        })
    return rows


def run(quick: bool):
    """Return the benchmark rows (see ``bench/run_all.py`` for the keys)."""
    return view_count_rows(quick) + path_rows(quick)
