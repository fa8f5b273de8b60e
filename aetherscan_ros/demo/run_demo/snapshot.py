# Copyright 2026 The AetherScan ROS Authors
# SPDX-License-Identifier: Apache-2.0
"""``make demo``, snapshot mode: one reconstruction of the demo scene, streamed and scored."""

import os
from pathlib import Path
import shutil
import sys
import time

import numpy as np

from aetherscan_ros.core.process_env import with_hugepage_malloc
from aetherscan_ros.demo.run_demo.monitor import (
    node_command, NodeMonitor, print_event, start_process, stop_process)
from aetherscan_ros.node.ros_domain import claim_domain_id


def metric_score(monitor, scene, fixed: str, points: np.ndarray) -> str:
    """
    Return the score in metres of the anchored result: no alignment, straight through TF.

    The cloud (``world_frame``) and the camera frames are carried into ``fixed`` by the
    ``fixed -> world_frame`` link the node published, and compared with the ground truth
    (the demo's world is ``fixed``: the camera published its poses there).
    """
    from scipy.spatial import cKDTree

    from aetherscan_ros.ros.tf import transform_to_matrix
    anchor = monitor.find_event('anchor') or {}
    links = [m for m in monitor.tf.values() if m.header.frame_id == fixed]
    if not anchor.get('ok') or not links:
        return f'not anchored in {fixed}: {anchor.get("reason", "no anchor event")}'
    to_fixed = transform_to_matrix(links[0])
    pts = np.asarray(points, np.float64) @ to_fixed[:3, :3].T + to_fixed[:3, 3]
    dist, _ = cKDTree(scene.surface_samples).query(pts[::5])
    poses = to_fixed @ monitor.view_poses()
    ok = np.isfinite(poses[:, 0, 3])
    centre = np.linalg.norm(poses[ok, :3, 3] - scene.poses_c2w[:len(poses)][ok, :3, 3], axis=1)
    return (f'anchored in {fixed} (scale {anchor["scale"]:.4f}, residual RMS '
            f'{anchor["residual_rms_m"] * 1000:.1f} mm, {len(anchor["views_used"])} views): '
            f'cloud median distance to the true surface {np.median(dist) * 1000:.1f} mm '
            f'({np.median(dist) / scene.extent:.3%} of the extent), camera centres mean '
            f'{centre.mean() * 1000:.1f} mm, max {centre.max() * 1000:.1f} mm - metres, no '
            'alignment')


def run_snapshot(args) -> int:
    """Run the snapshot demo; return the exit code (0 = reconstructed, streamed, saved, scored)."""
    import rclpy

    from aetherscan_ros.demo.evaluation import evaluate, format_scores
    from aetherscan_ros.demo.scene import make_scene, write_scene

    out = Path(args.output_dir).resolve()
    out.mkdir(parents=True, exist_ok=True)
    domain, _lock = claim_domain_id()
    env = dict(os.environ, ROS_DOMAIN_ID=str(domain), ROS_AUTOMATIC_DISCOVERY_RANGE='LOCALHOST',
               PYTHONUNBUFFERED='1')
    env.setdefault('ROS_LOG_DIR', str(out / 'ros_log'))
    env.setdefault('HF_HUB_OFFLINE', '1')  # the demo never downloads weights
    os.environ.update({k: env[k] for k in ('ROS_DOMAIN_ID', 'ROS_AUTOMATIC_DISCOVERY_RANGE',
                                           'ROS_LOG_DIR')})
    print(f'aetherscan demo: ROS_DOMAIN_ID={domain} (loopback only), output {out}', flush=True)
    t0 = time.monotonic()
    scene = make_scene(num_views=args.num_views, width=args.width, height=args.height,
                       path=args.path)
    scene_dir = write_scene(scene, out / 'scene').parent
    print(f'rendered the demo scene: {scene.num_views} views {args.width}x{args.height} '
          f'({time.monotonic() - t0:.1f} s), ground truth in {scene_dir}', flush=True)
    node_proc = pub_proc = None
    rclpy.init()
    monitor = NodeMonitor(on_event=print_event)
    try:
        node_proc = start_process(node_command({
            'backend': args.backend, 'model': args.model,
            'image_topics': ['/camera/image_raw'], 'image_transport': args.transport,
            'min_views': args.num_views, 'max_views': args.num_views,
            'keyframe_min_interval': 0.1, 'output_dir': str(out / 'node'),
            'fixed_frame': args.fixed_frame,
        }), out / 'node.log', {**env, **with_hugepage_malloc(env)})  # as the launch file
        if not monitor.wait_for_node(60.0):
            print(f'aetherscan_node did not start; see {out / "node.log"}', file=sys.stderr)
            return 1
        if monitor.wait_event('backend_selected', 300.0) is None:
            print(f'the backend did not load; see {out / "node.log"}', file=sys.stderr)
            return 1
        pub_proc = start_process([
            '-m', 'aetherscan_ros.demo.publisher', '--scene-dir', str(scene_dir),
            '--transport', args.transport, '--qos', args.qos, '--rate', '4',
            *(['--tf-frame', args.fixed_frame, '--tf-noise', '0.005', '0.2']
              if args.fixed_frame else [])],
            out / 'publisher.log', env)
        done = monitor.spin_until(
            lambda: monitor.find_event('reconstruction_complete') is not None or
            monitor.find_event('error', stage='reconstruct') is not None, args.timeout)
        error = monitor.find_event('error')
        complete = monitor.find_event('reconstruction_complete')
        if not done or complete is None:
            reason = error['message'] if error else f'no result after {args.timeout:.0f} s'
            print(f'reconstruction failed: {reason}; see {out / "node.log"}', file=sys.stderr)
            return 1
        recon = complete['reconstruction']
        monitor.spin_until(lambda: recon in monitor.assembled and monitor.cloud is not None and
                           monitor.tf, 30.0)
        streamed = monitor.assembled.get(recon)
        if streamed is None or monitor.cloud is None:
            print('the streamed chunks or ~/cloud did not arrive', file=sys.stderr)
            return 1
        same = all(np.array_equal(a, b) for a, b in zip(streamed, monitor.cloud))
        print(f'received {len([c for c in monitor.chunks if c[0] and c[0].recon == recon])} '
              f'chunks = {len(streamed)} points; identical to ~/cloud: {same}; '
              f'{sum(n.endswith("_optical") for n in monitor.tf)} camera TF frames', flush=True)
        ok, message = monitor.call('save', 120.0)
        if not ok:
            print(f'~/save failed: {message}', file=sys.stderr)
            return 1
        saved = Path(message)
        for name in ('cloud.ply', 'poses.json', 'preview.png'):
            shutil.copy2(saved / name, out / name)

        class _Received:
            points = streamed.points
            poses_c2w = monitor.view_poses()

        scores = evaluate(_Received, scene)
        print('score of what arrived over ROS (chunks + TF) against the ground truth:')
        print(format_scores(scores), flush=True)
        if args.fixed_frame:
            print(metric_score(monitor, scene, args.fixed_frame, streamed.points), flush=True)
        print(f'backend {complete["backend"]}, {complete["seconds"]:.1f} s; wrote '
              f'{out / "cloud.ply"}, {out / "poses.json"}, {out / "preview.png"}', flush=True)
        return 0 if same else 1
    finally:
        stop_process(pub_proc)
        stop_process(node_proc)
        monitor.close()
        rclpy.try_shutdown()
