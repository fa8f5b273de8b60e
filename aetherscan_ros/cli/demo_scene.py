# Copyright 2026 The AetherScan ROS Authors
# SPDX-License-Identifier: Apache-2.0
"""``aetherscan demo-scene``: render the synthetic textured room with its ground truth."""

from pathlib import Path
import sys
import time

from aetherscan_ros.cli.common import CliError, EXIT_FAILED, EXIT_OK

CAMERA_INFO_FILE = 'camera_info.yaml'


def cmd_demo_scene(args) -> int:
    """Run ``aetherscan demo-scene``."""
    if args.views < 2:
        raise CliError(f'--views {args.views}: need at least 2 views')
    if args.width < 32 or args.height < 32 or args.width > 8192 or args.height > 8192:
        raise CliError(f'--width/--height {args.width}x{args.height}: must be 32..8192 pixels')
    from aetherscan_ros.core.calibration_file import write_calibration_yaml
    from aetherscan_ros.core.camera_model import CameraModel
    from aetherscan_ros.demo.distortion import distorted_demo_scene
    from aetherscan_ros.demo.scene import make_scene, write_scene
    distortion = getattr(args, 'distortion', 'none') or 'none'
    out_dir = Path(args.output_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise CliError(f'{out_dir}: exists and is not a directory')
    start = time.monotonic()
    lens = '' if distortion == 'none' else f', {distortion} lens'
    sys.stderr.write(f'aetherscan demo-scene: rendering {args.views} views of '
                     f'{args.width}x{args.height} ({args.path}, seed {args.seed}{lens})\n')
    try:
        scene = make_scene(num_views=args.views, width=args.width, height=args.height,
                           seed=args.seed, path=args.path)
        if distortion == 'none':
            model = CameraModel(width=args.width, height=args.height, distortion_model='',
                                D=(), K=scene.K, camera_name='aetherscan_demo')
        else:
            scene, model = distorted_demo_scene(scene, distortion)
    except ValueError as exc:
        raise CliError(str(exc)) from None
    calib_path = out_dir / CAMERA_INFO_FILE
    try:
        write_calibration_yaml(model, calib_path)  # before ground_truth.json, written last
        gt_path = write_scene(scene, out_dir)
    except OSError as exc:
        raise CliError(f'{out_dir}: cannot write the scene ({exc})', EXIT_FAILED) from None
    K = scene.K
    k_text = f'{K[0, 0]:g},{K[1, 1]:g},{K[0, 2]:g},{K[1, 2]:g}'
    print(f'aetherscan demo-scene: wrote {scene.num_views} views to {out_dir} in '
          f'{time.monotonic() - start:.1f} s')
    print(f'  images        {scene.names[0]} .. {scene.names[-1]}'
          + (f' (raw, {distortion} distortion)' if lens else ''))
    print(f'  ground truth  {gt_path} (extent {scene.extent:.2f} m)')
    print(f'  calibration   {calib_path} (K {k_text}'
          + (f', {distortion} D {", ".join(f"{v:g}" for v in model.D)})' if lens else ')'))
    known = (f'--camera-info {calib_path}' if lens else f'--intrinsics {k_text}')
    print(f'  next          aetherscan reconstruct {out_dir} -o {out_dir / "result"} {known}')
    print(f'                aetherscan eval {out_dir / "result"} {out_dir}')
    return EXIT_OK
