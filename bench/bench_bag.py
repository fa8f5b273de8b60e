# Copyright 2026 The AetherScan ROS Authors
# SPDX-License-Identifier: Apache-2.0
"""
Benchmark of rosbag2 in: :func:`aetherscan_ros.files.bag.read_bag` on camera bags.

Bags of N random 640x480 views (raw rgb8 Image in .db3 and .mcap; CompressedImage png and
jpeg in .mcap; camera_info beside every image) are written with ``rosbags`` and read back
(deserialise, decode, pair with camera_info). The baseline is what ``aetherscan reconstruct``
does with the same views as PNG files (``cli/inputs.py`` ``read_image``), so ``ratio`` < 1
means the bag is the faster input.

Run: ``python -m bench.run_all --only bag [--quick]``.
"""

from pathlib import Path
import tempfile
import time

import cv2
import numpy as np

WIDTH, HEIGHT = 640, 480
STAMP0_NS = 1_700_000_000 * 1_000_000_000


def _images(count: int, seed: int = 0):
    """Return ``count`` smooth random textures ``[H, W, 3]`` (compressible like photos)."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 255, (count, HEIGHT // 8, WIDTH // 8, 3), dtype=np.uint8)
    return [cv2.resize(img, (WIDTH, HEIGHT), interpolation=cv2.INTER_CUBIC) for img in small]


def _write_bag(path: Path, images, storage: str, fmt: str) -> Path:
    from rosbags.rosbag2 import StoragePlugin, Writer
    from rosbags.typesys import get_typestore, Stores
    store = get_typestore(Stores.ROS2_JAZZY)
    types = store.types
    plugin = StoragePlugin.MCAP if storage == 'mcap' else StoragePlugin.SQLITE3
    img_type = 'sensor_msgs/msg/Image' if fmt == 'raw' else 'sensor_msgs/msg/CompressedImage'
    topic = '/cam/image_raw' + ('' if fmt == 'raw' else '/compressed')
    K = np.array([500.0, 0, WIDTH / 2, 0, 500.0, HEIGHT / 2, 0, 0, 1])
    with Writer(path, version=9, storage_plugin=plugin) as writer:
        conn = writer.add_connection(topic, img_type, typestore=store)
        info_conn = writer.add_connection('/cam/camera_info', 'sensor_msgs/msg/CameraInfo',
                                          typestore=store)
        for i, rgb in enumerate(images):
            stamp = STAMP0_NS + i * 100_000_000
            header = types['std_msgs/msg/Header'](
                stamp=types['builtin_interfaces/msg/Time'](sec=stamp // 10**9,
                                                           nanosec=stamp % 10**9),
                frame_id='cam')
            info = types['sensor_msgs/msg/CameraInfo'](
                header=header, height=HEIGHT, width=WIDTH, distortion_model='plumb_bob',
                d=np.zeros(5), k=K, r=np.eye(3).reshape(-1),
                p=np.concatenate([K[:3], [0], K[3:6], [0], K[6:], [0]]), binning_x=0,
                binning_y=0, roi=types['sensor_msgs/msg/RegionOfInterest'](
                    x_offset=0, y_offset=0, height=0, width=0, do_rectify=False))
            writer.write(info_conn, stamp, store.serialize_cdr(
                info, 'sensor_msgs/msg/CameraInfo'))
            if fmt == 'raw':
                msg = types[img_type](header=header, height=HEIGHT, width=WIDTH,
                                      encoding='rgb8', is_bigendian=0, step=WIDTH * 3,
                                      data=rgb.reshape(-1))
            else:
                ok, buf = cv2.imencode('.png' if fmt == 'png' else '.jpg', rgb[..., ::-1])
                msg = types[img_type](header=header, format=f'rgb8; {fmt} compressed bgr8',
                                      data=buf.reshape(-1))
            writer.write(conn, stamp + 1000, store.serialize_cdr(msg, img_type))
    return path


def _median(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def run(quick: bool):
    """Read bags of 8 (quick) or 30 views of 640x480; baseline: the same views as PNG files."""
    from aetherscan_ros.cli.inputs import read_image
    from aetherscan_ros.files.bag import read_bag
    count, repeat = (8, 3) if quick else (30, 5)
    images = _images(count)
    rows = []
    with tempfile.TemporaryDirectory(prefix='bench_bag_') as tmp:
        root = Path(tmp)
        pngs = []
        for i, rgb in enumerate(images):
            pngs.append(root / f'frame_{i:03d}.png')
            cv2.imwrite(str(pngs[-1]), rgb[..., ::-1])
        baseline = _median(lambda: [read_image(p) for p in pngs], repeat)
        size = f'{count} x {WIDTH}x{HEIGHT}'
        rows.append({'group': 'bag', 'what': 'PNG files (cli read_image)', 'size': size,
                     'median_s': baseline, 'throughput': f'{count / baseline:.0f} img/s',
                     'baseline': None, 'ratio': None, 'notes': 'the baseline'})
        for storage, fmt in (('sqlite3', 'raw'), ('mcap', 'raw'), ('mcap', 'png'),
                             ('mcap', 'jpeg')):
            bag = _write_bag(root / f'{storage}_{fmt}', images, storage, fmt)
            megabytes = sum(p.stat().st_size for p in bag.iterdir()) / 1e6
            contents = read_bag(bag)
            assert len(contents.images) == count and contents.images[0].camera_model
            seconds = _median(lambda b=bag: read_bag(b), repeat)
            rows.append({
                'group': 'bag', 'what': f'read_bag {storage} {fmt}', 'size': size,
                'median_s': seconds,
                'throughput': f'{count / seconds:.0f} img/s, {megabytes / seconds:.0f} MB/s',
                'baseline': baseline, 'ratio': seconds / baseline,
                'notes': f'bag {megabytes:.1f} MB; deserialise + decode + camera_info'})
    return rows
