# Copyright 2026 The AetherScan ROS Authors
# SPDX-License-Identifier: Apache-2.0
"""
Benchmarks of depth out and the exports, on a Fast3R-sized result (dense per-view pointmaps).

* per-view depth images (:func:`aetherscan_ros.core.depth.result_depths`: the z-buffer is an
  unbuffered ``np.minimum.at`` scatter) against a sort-based z-buffer (sort by depth, first
  point of each pixel by ``np.unique``; what the module did first);
* the COLMAP export (pycolmap, the point budget, tracks checked against depth images);
* the nerfstudio export with its PNG images.

Run: ``python -m bench.run_all --only exports [--quick]``.
"""

import tempfile
import time

import numpy as np

from aetherscan_ros.backends.base import result_from_view_clouds, ViewCloud
from aetherscan_ros.core.depth import (
    backproject, pixel_of, project, result_depths, to_camera)


def synthetic_result(views: int, width: int, height: int, seed: int = 0):
    """Return ``(result, images)``: views orbiting a bumpy wall, one point per pixel each."""
    rng = np.random.default_rng(seed)
    K = np.array([[0.9 * width, 0.0, width / 2], [0.0, 0.9 * width, height / 2], [0, 0, 1.0]])
    poses, clouds, images = [], [], []
    rows, cols = np.mgrid[0:height, 0:width]
    for v in range(views):
        angle = np.radians(4.0 * v)
        pose = np.eye(4)
        pose[:3, :3] = [[np.cos(angle), 0, np.sin(angle)], [0, 1, 0],
                        [-np.sin(angle), 0, np.cos(angle)]]
        pose[:3, 3] = [0.3 * v, 0.0, 0.0]
        depth = (3.0 + 0.2 * np.sin(cols / 17.0) * np.cos(rows / 23.0)).astype(np.float32)
        cam, _ = backproject(depth, K)
        image = rng.integers(0, 255, (height, width, 3), dtype=np.uint8)
        clouds.append(ViewCloud(v, (cam @ pose[:3, :3].T + pose[:3, 3]).astype(np.float32),
                                image.reshape(-1, 3), np.ones(len(cam), np.float32)))
        poses.append(pose)
        images.append(image)
    result = result_from_view_clouds(clouds, np.stack(poses), np.stack([K] * views),
                                     np.array([[width, height]] * views), 'bench',
                                     info={'metric_scale': True})
    return result, images


def _sorted_depths(result):
    """Depth images by sorting on depth (the reference the z-buffer is compared to)."""
    out = []
    for v in range(result.num_views):
        width, height = (int(x) for x in result.image_sizes[v])
        uv, z = project(to_camera(result.points[result.view_index == v], result.poses_c2w[v]),
                        result.intrinsics[v])
        flat, inside = pixel_of(uv, (width, height))
        flat, z = flat[inside], z[inside]
        order = np.argsort(z, kind='stable')
        pixels, first = np.unique(flat[order], return_index=True)  # first = nearest
        depth = np.full(width * height, np.nan, np.float32)
        depth[pixels] = z[order][first]
        out.append(depth.reshape(height, width))
    return out


def _median(fn, repeat):
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def run(quick: bool):
    """Run the export benchmarks; ``quick`` uses 4 views of 256x192."""
    from aetherscan_ros.files.colmap import MAX_POINTS, write_colmap
    from aetherscan_ros.files.export_views import write_images
    from aetherscan_ros.files.nerfstudio import write_nerfstudio
    views, width, height = (4, 256, 192) if quick else (10, 512, 384)
    result, images = synthetic_result(views, width, height)
    n = result.num_points
    size = f'{views} views {width}x{height}, {n:,} pts'
    repeat = 2 if quick else 3
    rows = []
    fast = _median(lambda: result_depths(result), repeat)
    naive = _median(lambda: _sorted_depths(result), repeat)
    same = all(np.array_equal(a.depth, b, equal_nan=True)
               for a, b in zip(result_depths(result), _sorted_depths(result)))
    rows.append({'group': 'exports', 'what': 'depth images (z-buffer, all views)', 'size': size,
                 'median_s': fast, 'throughput': f'{n / fast / 1e6:.1f} Mpt/s',
                 'baseline': 'sort-based z-buffer', 'ratio': naive / fast,
                 'notes': f'speed-up; per view {fast / views * 1e3:.1f} ms; identical '
                          f'images: {same}'})
    with tempfile.TemporaryDirectory() as tmp:
        summary = [None]

        def colmap():
            summary[0] = write_colmap(result, tmp)

        seconds = _median(colmap, 1 if not quick else repeat)
        s = summary[0]
        rows.append({'group': 'exports', 'what': 'COLMAP model (pycolmap, binary)', 'size': size,
                     'median_s': seconds, 'throughput': f'{s.points / seconds / 1e3:.0f} k '
                     'points3D/s', 'baseline': '', 'ratio': None,
                     'notes': f'{s.points:,} points3D (budget {MAX_POINTS:,}), '
                              f'{s.observations:,} observations, mean track '
                              f'{s.mean_track_length:.2f}'})
        seconds = _median(lambda: (write_images(result, images, tmp),
                                   write_nerfstudio(result, tmp)), repeat)
        rows.append({'group': 'exports', 'what': 'nerfstudio transforms.json + PNG images',
                     'size': size, 'median_s': seconds,
                     'throughput': f'{views / seconds:.1f} views/s', 'baseline': '',
                     'ratio': None, 'notes': 'PNG compression level 1'})
    return rows


if __name__ == '__main__':  # pragma: no cover - manual run
    for row in run(quick=True):
        print(row)
