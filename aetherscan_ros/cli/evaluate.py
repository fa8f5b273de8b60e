# Copyright 2026 The AetherScan ROS Authors
# SPDX-License-Identifier: Apache-2.0
"""``aetherscan eval``: score a saved result against a demo scene's ground truth."""

from pathlib import Path

from aetherscan_ros.cli.common import CliError, EXIT_FAILED, EXIT_OK


def cmd_eval(args) -> int:
    """Run ``aetherscan eval``."""
    from aetherscan_ros.files.errors import ResultFormatError
    from aetherscan_ros.files.results import load_result
    result_dir, gt_dir = Path(args.result_dir), Path(args.gt_dir)
    for label, path in (('RESULT_DIR', result_dir), ('GT_DIR', gt_dir)):
        if not path.is_dir():
            raise CliError(f'{label} {path}: no such directory')
    try:
        result, names = load_result(result_dir)
    except ResultFormatError as exc:
        raise CliError(str(exc)) from None
    from aetherscan_ros.demo.evaluation import evaluate, format_scores
    from aetherscan_ros.demo.scene import load_scene
    try:
        scene = load_scene(gt_dir, load_images=False)
    except ValueError as exc:
        raise CliError(str(exc)) from None
    gt_names = {Path(n).name for n in scene.names}
    if all(Path(n).name in gt_names for n in names):
        image_names = list(names)  # match views to the ground truth by file name
    elif scene.num_views == result.num_views:
        image_names = None  # view i is ground-truth view i
    else:
        raise CliError(f'{result_dir} has {result.num_views} views whose file names are not '
                       f'images of the ground truth in {gt_dir} ({scene.num_views} views)',
                       EXIT_FAILED)
    try:
        scores = evaluate(result, scene, image_names=image_names)
    except ValueError as exc:
        raise CliError(f'cannot evaluate {result_dir} against {gt_dir}: {exc}',
                       EXIT_FAILED) from None
    if args.json:
        import json
        print(json.dumps(scores.as_dict(), indent=2, default=str))
    else:
        print(f'aetherscan eval: {result_dir} ({result.backend}, {result.num_points:,} points, '
              f'{result.num_views} views) against {gt_dir}')
        print(format_scores(scores))
    return EXIT_OK
