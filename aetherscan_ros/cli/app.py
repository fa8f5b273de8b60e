# Copyright 2026 The AetherScan ROS Authors
# SPDX-License-Identifier: Apache-2.0
"""The ``aetherscan`` argument parser and :func:`main`, which runs one verb."""

import argparse
import logging
import re
import sys
from typing import List, Optional, Sequence

from aetherscan_ros.cli.bag_input import add_bag_arguments
from aetherscan_ros.cli.common import _Parser, CliError, EXIT_FAILED, EXIT_INTERRUPTED
from aetherscan_ros.cli.demo_scene import cmd_demo_scene
from aetherscan_ros.cli.doctor import cmd_doctor
from aetherscan_ros.cli.evaluate import cmd_eval
from aetherscan_ros.cli.reconstruct import cmd_reconstruct
from aetherscan_ros.cli.ros_verbs import add_ros_verbs

_LOG = logging.getLogger(__name__)
# a word after --intrinsics that argparse would take for an option but is a value: -995,600,...
_DASHED_VALUE = re.compile(r'-(\.?\d|inf|nan)', re.IGNORECASE)


def build_parser() -> argparse.ArgumentParser:
    """Return the ``aetherscan`` argument parser."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument('-v', '--verbose', action='count', default=argparse.SUPPRESS,
                        help='more log output (-v info, -vv debug)')
    common.add_argument('--debug', action='store_true', default=argparse.SUPPRESS,
                        help='print the Python traceback of an error')
    parser = _Parser(
        prog='aetherscan', parents=[common],
        description='Multi-view 3D reconstruction from images (MapAnything or Fast3R, or a '
                    'classical COLMAP/OpenCV pipeline when no weights exist).',
        epilog='Exit status: 0 ok, 1 the work failed, 2 bad arguments or input, '
               '130 interrupted.')
    verbs = parser.add_subparsers(dest='verb', metavar='VERB', parser_class=_Parser)
    verbs.required = True

    rec = verbs.add_parser(
        'reconstruct', parents=[common], help='images -> cloud.ply, poses.json, preview.png',
        description='Reconstruct a colored point cloud and camera poses from 2 or more images '
                    'and write OUT_DIR/cloud.ply (binary PLY: x y z, RGB, confidence, view), '
                    'OUT_DIR/poses.json (per image: file, 4x4 camera-to-world in the first '
                    "camera's optical frame, K, size) and OUT_DIR/preview.png.",
        epilog='A directory expands to its images in natural order (a demo-scene directory '
               'to its RGB frames). Images whose long sides differ by more than 2x are '
               'refused. Exit status: 0 ok, 1 reconstruction failed, 2 bad input, 130 '
               'interrupted.')
    rec.add_argument('images', nargs='*', metavar='IMG',
                     help='image files and/or directories of images')
    rec.add_argument('-o', '--output', required=True, metavar='OUT_DIR',
                     help='output directory (created if missing; files are replaced '
                          'atomically)')
    rec.add_argument('--backend', choices=('auto', 'mapanything', 'fast3r', 'classical'),
                     default='auto',
                     help='auto: the first whose weights are on this machine and load: '
                          'MapAnything (metric; takes --intrinsics/--camera-info as inputs), '
                          'Fast3R, else classical (default: %(default)s)')
    known = rec.add_mutually_exclusive_group()
    known.add_argument('--intrinsics', action='extend', nargs='+', metavar='FX,FY,CX,CY',
                       help='pinhole intrinsics in pixels of the input images: once for all '
                            'images, or once per image in order (stereo rigs differ in '
                            'principal point); omitted: estimated')
    known.add_argument('--camera-info', action='extend', nargs='+', metavar='FILE',
                       help='calibration file(s) in the YAML format of ROS camera_calibrator / '
                            'camera_calibration_parsers (K, and D with distortion_model '
                            'plumb_bob, rational_polynomial or equidistant): once for all '
                            'images, or once per image in order. The images are taken as raw '
                            '(distorted) and undistorted before reconstruction; poses.json '
                            'then gives the undistorted K')
    rec.add_argument('--model', default='', metavar='PATH_OR_REPO',
                     help='MapAnything or Fast3R checkpoint: a directory with config.json + '
                          'model.safetensors, or a hub repo id (defaults '
                          'facebook/map-anything-apache, jedyang97/Fast3R_ViT_Large_512). '
                          '--backend auto uses it only when it is already on this machine; '
                          '--backend mapanything/fast3r may download it (unless '
                          'HF_HUB_OFFLINE=1)')
    rec.add_argument('--device', choices=('auto', 'cpu', 'cuda'), default='auto',
                     help='MapAnything/Fast3R device: auto = CUDA (bf16/fp16) when present, '
                          'else CPU fp32')
    rec.add_argument('--no-preview', action='store_true', help='skip preview.png')
    rec.add_argument('--export', action='append', default=[], metavar='KIND[,KIND...]',
                     help='also write, beside cloud.ply: colmap (colmap/: cameras, images, '
                          'points3D, binary), nerfstudio (transforms.json; both with '
                          'images/view_NNNN.png), depth (depth/view_NNNN.tiff, 32-bit float, '
                          'NaN = no point); comma-separated or repeated')
    add_bag_arguments(rec)
    rec.set_defaults(func=cmd_reconstruct)

    demo = verbs.add_parser(
        'demo-scene', parents=[common], help='render a textured demo scene with ground truth',
        description='Render the synthetic textured room from a camera path and write its RGB '
                    'frames (frame_NNN.png), depth maps (depth_NNN.png, uint16 mm), surface '
                    'samples, ground_truth.json (K, camera-to-world poses) and '
                    'camera_info.yaml (the calibration, for --camera-info) to OUT_DIR. '
                    'Deterministic from --seed; nothing is downloaded.')
    demo.add_argument('output_dir', metavar='OUT_DIR')
    demo.add_argument('--views', type=int, default=8, help='number of views (default 8)')
    demo.add_argument('--width', type=int, default=640, help='image width (default 640)')
    demo.add_argument('--height', type=int, default=480, help='image height (default 480)')
    demo.add_argument('--seed', type=int, default=0, help='random seed (default 0)')
    demo.add_argument('--path', default='orbit', metavar='orbit|robot|forward|narrow|tour',
                      help='camera path: orbit around the table, a robot-like sideways drive, '
                           'a forward drive, a narrow-baseline arc (1 degree steps) or a long '
                           'tour with turns and revisits (default orbit)')
    demo.add_argument('--distortion', choices=('none', 'plumb_bob', 'equidistant'),
                      default='none',
                      help='lens of the camera: none (pinhole), plumb_bob (a stereo head, k1 '
                           '-0.27) or equidistant (a fisheye); frames are then raw distorted '
                           'images. camera_info.yaml (K, D) is written either way '
                           '(default none)')
    demo.set_defaults(func=cmd_demo_scene)

    ev = verbs.add_parser(
        'eval', parents=[common], help='score a result against a demo scene ground truth',
        description='Sim(3)-align the estimated camera centers of RESULT_DIR (cloud.ply + '
                    'poses.json) to the ground truth in GT_DIR (from demo-scene) and print '
                    'rotation error, camera-center error and cloud accuracy/completeness (% '
                    'of the scene extent).')
    ev.add_argument('result_dir', metavar='RESULT_DIR')
    ev.add_argument('gt_dir', metavar='GT_DIR')
    ev.add_argument('--json', action='store_true', help='print the scores as JSON')
    ev.set_defaults(func=cmd_eval)

    doc = verbs.add_parser(
        'doctor', parents=[common], help='check Python, ROS 2, torch, CUDA and model weights',
        description='Report what this machine has (Python, ROS 2 imports, torch, CUDA device '
                    'and free memory, MapAnything and Fast3R weights with their licences) '
                    'with the fix for anything missing, and which backend `auto` would pick. '
                    'Never downloads (HF_HUB_OFFLINE=1). Exit status 1 when no backend can '
                    'run.')
    doc.add_argument('--model', default='', metavar='PATH_OR_REPO',
                     help='checkpoint to look for (default: the official MapAnything '
                          'Apache and Fast3R repo ids)')
    doc.add_argument('--device', choices=('auto', 'cpu', 'cuda'), default='auto')
    doc.set_defaults(func=cmd_doctor)

    add_ros_verbs(verbs, common)
    return parser


def _setup_logging(verbosity: int) -> None:
    level = logging.WARNING if verbosity <= 0 else logging.INFO if verbosity == 1 \
        else logging.DEBUG
    logging.basicConfig(level=level, stream=sys.stderr,
                        format='%(levelname)s %(name)s: %(message)s')


def dashed_intrinsics(argv: Sequence[str]) -> List[str]:
    """
    Return ``argv`` with the values of ``--intrinsics`` that start with ``-`` made parseable.

    argparse reads a word that starts with ``-`` as an option unless it is a plain negative
    number, so ``--intrinsics -995,600,320,240`` failed with "expected at least one argument"
    before the value could be checked (and refused by name: focal lengths must be > 0). When a
    value after ``--intrinsics`` (or an abbreviation of it) starts with ``-`` and a digit,
    ``.``, ``inf`` or ``nan``, every word up to the next option is passed as
    ``--intrinsics=WORD`` instead, which argparse takes as it is.
    """
    argv, out, i = [str(word) for word in argv], [], 0
    while i < len(argv):
        word = argv[i]
        if word == '--':
            out.extend(argv[i:])
            break
        values = []
        if word.startswith('--i') and '--intrinsics'.startswith(word):
            for value in argv[i + 1:]:
                if value.startswith('-') and not _DASHED_VALUE.match(value):
                    break
                values.append(value)
        if any(value.startswith('-') for value in values):
            out.extend(f'--intrinsics={value}' for value in values)
            i += 1 + len(values)
            continue
        out.append(word)
        i += 1
    return out


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the ``aetherscan`` command; return the exit status."""
    parser = build_parser()
    args = parser.parse_args(dashed_intrinsics(sys.argv[1:] if argv is None else argv))
    debug = bool(getattr(args, 'debug', False))
    _setup_logging(int(getattr(args, 'verbose', 0) or 0))
    prog = f'aetherscan {args.verb}'
    try:
        return args.func(args)
    except CliError as exc:
        if debug:
            import traceback
            traceback.print_exc()
        sys.stderr.write(f'{prog}: error: {exc}\n')
        return exc.code
    except KeyboardInterrupt:
        sys.stderr.write(f'{prog}: interrupted\n')
        return EXIT_INTERRUPTED
    except MemoryError:
        sys.stderr.write(f'{prog}: error: out of memory (try fewer or smaller images)\n')
        return EXIT_FAILED
    except Exception as exc:  # noqa: B902 - one line, not a traceback, unless --debug
        if debug:
            raise
        first = str(exc).splitlines()[0] if str(exc) else ''
        sys.stderr.write(f'{prog}: error: internal error {type(exc).__name__}: {first} '
                         '(run again with --debug for the traceback and report it)\n')
        return EXIT_FAILED
