# Copyright 2026 The AetherScan ROS Authors
# SPDX-License-Identifier: Apache-2.0
"""
Continuous mapping benchmarks: map update cost and per-window registration.

* Map update: fuse N points into a :class:`~aetherscan_ros.core.voxel_map.VoxelMap` already
  holding M voxels (half of the new points fall into existing voxels, half into new ones),
  against :func:`aetherscan_ros.cloud.voxel_downsample` of the same N points measured in the same
  run (the cost of averaging them into voxels without any map); ``ratio`` = fuse time /
  downsample time. Fusing into an empty map is reported too.
* Registration: :func:`aetherscan_ros.core.registration.register_window` on two shared
  keyframes (depth grids of 320x240 views), and a whole :meth:`Mapper.integrate` of an 8-view
  window of 160k points (registration + transform + fusion), no backend.
"""

import statistics
import time

import numpy as np

from aetherscan_ros.cloud import voxel_downsample
from aetherscan_ros.core.mapping import Mapper, MappingConfig
from aetherscan_ros.core.registration import depth_grid, register_window
from aetherscan_ros.core.voxel_map import VoxelMap

VOXEL = 0.01


def _timeit(fn, repeat, setup=None):
    """Return the median wall time of ``fn(setup())`` over ``repeat`` runs (setup untimed)."""
    times = []
    for _ in range(repeat):
        arg = setup() if setup is not None else None
        start = time.perf_counter()
        fn(arg)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _points(n, seed, lo=0.0, hi=4.0):
    rng = np.random.default_rng(seed)
    pts = rng.uniform(lo, hi, (n, 3)).astype(np.float32)
    pts[:, 2] = np.round(pts[:, 2] * 4) / 4   # layered surfaces, not a volume
    return pts, rng.integers(0, 256, (n, 3)).astype(np.uint8), \
        rng.uniform(0.5, 2.0, n).astype(np.float32)


def _row(what, size, seconds, baseline='', ratio=None, notes='', points=None):
    thr = f'{points / seconds / 1e6:.2f} Mpt/s' if points else ''
    return {'group': 'mapping', 'what': what, 'size': size, 'median_s': seconds,
            'throughput': thr, 'baseline': baseline, 'ratio': ratio, 'notes': notes}


def _update_rows(quick):
    m, n = (200_000, 50_000) if quick else (1_000_000, 200_000)
    repeat = 3 if quick else 5
    base = _points(m, 1)
    vmap_base = VoxelMap(VOXEL)
    vmap_base.fuse(*base)
    held = len(vmap_base)
    old = base[0][:n // 2] + np.float32(VOXEL * 0.1)           # into existing voxels
    new = _points(n - n // 2, 2, 4.0, 6.0)[0]                  # beyond the map: new voxels
    pts = np.concatenate([old, new])
    col = np.concatenate([base[1][:n // 2], _points(n - n // 2, 2)[1]])
    conf = np.ones(n, np.float32)

    def fresh():
        vmap = VoxelMap(VOXEL)
        vmap.fuse(*base)
        return vmap

    t_fuse = _timeit(lambda vmap: vmap.fuse(pts, col, conf), repeat, fresh)
    t_empty = _timeit(lambda vmap: vmap.fuse(pts, col, conf), repeat, lambda: VoxelMap(VOXEL))
    t_down = _timeit(lambda _: voxel_downsample(pts, col, conf, voxel=VOXEL), repeat)
    base_name = 'voxel_downsample of the same points'
    return [
        _row('VoxelMap.fuse into a map', f'{n:,} pts into {held:,} voxels', t_fuse, base_name,
             t_fuse / t_down, 'half into existing voxels; ratio = fuse / downsample', n),
        _row('VoxelMap.fuse into an empty map', f'{n:,} pts', t_empty, base_name,
             t_empty / t_down, 'ratio = fuse / downsample', n),
        _row(base_name, f'{n:,} pts', t_down, notes='baseline, same run', points=n),
    ]


def _corridor_view(pose, width=320, height=240, stride=2):
    """Return world points a camera sees of a wall (y = 3) and a floor (z = -1)."""
    k = np.array([[260.0, 0, (width - 1) / 2], [0, 260.0, (height - 1) / 2], [0, 0, 1.0]])
    u, v = np.meshgrid(np.arange(0, width, stride), np.arange(0, height, stride))
    rays = np.stack([u.ravel(), v.ravel(), np.ones(u.size)], 1) @ np.linalg.inv(k).T
    dirs = rays @ pose[:3, :3].T
    c = pose[:3, 3]
    with np.errstate(divide='ignore', invalid='ignore'):
        t = np.minimum(np.where(dirs[:, 1] > 0, (3.0 - c[1]) / dirs[:, 1], np.inf),
                       np.where(dirs[:, 2] < 0, (-1.0 - c[2]) / dirs[:, 2], np.inf))
    keep = np.isfinite(t)
    return c + dirs[keep] * t[keep, None], k


def _pose(x):
    pose = np.eye(4)
    pose[:3, :3] = [[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, -1.0, 0.0]]
    pose[:3, 3] = [x, 0.0, 0.1 * np.sin(x)]
    return pose


def _registration_rows(quick):
    from aetherscan_ros.backends.base import Frame, result_from_view_clouds, ViewCloud
    from aetherscan_ros.core.geometry import invert_pose
    repeat = 5 if quick else 20
    poses = np.stack([_pose(0.2 * i) for i in range(14)])
    views = [_corridor_view(p) for p in poses]
    grids = [depth_grid(pts, p, k, (320, 240)) for (pts, k), p in zip(views, poses)]
    t_reg = _timeit(lambda _: register_window(poses[:2], poses[:2], grids[:2], grids[:2]),
                    repeat)

    def window_result(idx, scale):
        to_win = invert_pose(poses[idx[0]])
        clouds, wp = [], []
        for j, i in enumerate(idx):
            pts = (views[i][0] @ to_win[:3, :3].T + to_win[:3, 3]) * scale
            clouds.append(ViewCloud(j, pts.astype(np.float32),
                                    np.full((len(pts), 3), 128, np.uint8),
                                    np.ones(len(pts), np.float32)))
            p = to_win @ poses[i]
            p[:3, 3] *= scale
            wp.append(p)
        return result_from_view_clouds(clouds, np.stack(wp), np.stack([views[i][1] for i in idx]),
                                       np.tile([320, 240], (len(idx), 1)), 'synthetic')

    image = np.zeros((2, 2, 3), np.uint8)
    frames = [Frame(image, f'kf{i}', i + 1, 'cam') for i in range(14)]
    first, second = list(range(8)), list(range(6, 14))
    res_a, res_b = window_result(first, 1.0), window_result(second, 0.5)

    class _Buffer:
        def __init__(self, items):
            self.items = items

        def take(self):
            out, self.items = self.items, []
            return out

        def done(self):
            pass

    def setup():
        mapper = Mapper(MappingConfig(8, 2, voxel_size=VOXEL))
        window, _ = mapper.take_window(_Buffer(frames[:8]))
        mapper.integrate(1, window, res_a)
        mapper.take_window(_Buffer(frames[8:]))
        return mapper

    def integrate(mapper):
        report = mapper.integrate(2, [frames[i] for i in second], res_b)
        assert report.registered, report.reason

    t_int = _timeit(integrate, max(3, repeat // 4), setup)
    n = res_b.num_points
    return [
        _row('register_window (2 shared keyframes)', '2 x 320x240 depth grids', t_reg,
             notes='pose consensus + depth-ratio scale + Umeyama refinement'),
        _row('Mapper.integrate (registration + fusion)', f'8 views, {n:,} pts', t_int,
             notes='no backend; voxel 1 cm', points=n),
    ]


def run(quick: bool = False):
    """Return the benchmark rows (see the module docstring)."""
    return _update_rows(quick) + _registration_rows(quick)


if __name__ == '__main__':
    for row in run(quick=True):
        print(row)
