# Copyright 2026 The AetherScan ROS Authors
# SPDX-License-Identifier: Apache-2.0
"""
The ``aetherscan`` command line: reconstruct, demo-scene, eval, doctor.

Heavy modules (numpy, OpenCV, the backends, torch) are imported inside the verbs, so
``aetherscan --help`` is instant and ``aetherscan doctor`` works when torch is missing.

Exit status: 0 success, 1 the work failed (the input could not be reconstructed, a backend is
unavailable, an output could not be written), 2 bad arguments or input files, 130 interrupted
(Ctrl-C). Every failure prints exactly one ``aetherscan <verb>: error: ...`` line on stderr
(``--debug`` adds the traceback).
"""

import argparse
import logging
import os
from pathlib import Path
import re
import sys
import time
from typing import List, Optional, Sequence, Tuple

_LOG = logging.getLogger(__name__)

IMAGE_EXTENSIONS = ('.png', '.jpg', '.jpeg', '.bmp', '.tif', '.tiff', '.webp', '.ppm', '.pgm',
                    '.pnm', '.jp2')
MAX_SIZE_RATIO = 2.0  # long sides of the input images may differ by at most this factor
MAX_IMAGE_SIDE = 8192  # larger images are refused from their header, before any decoding
RANDOM_WEIGHTS = 'random weights (not a trained model)'
DEMO_GT_FILE = 'ground_truth.json'
# result.info keys the summary shows first; the others follow while the screen has room
SUMMARY_INFO_KEYS = ('model', 'device', 'dtype', 'method', 'intrinsics', 'registered_views',
                     'mean_reprojection_error_px', 'unit')
SUMMARY_INFO_SKIP = ('unregistered', 'unregistered_policy', 'confidence', 'points_per_view')

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


class CliError(Exception):
    """A failure to report as one line; ``code`` is the exit status."""

    def __init__(self, message: str, code: int = EXIT_USAGE):
        super().__init__(message)
        self.code = code


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose usage errors are one line (and exit status 2)."""

    def error(self, message):
        """Print ``PROG: error: MESSAGE (see PROG --help)`` and exit with status 2."""
        sys.stderr.write(f'{self.prog}: error: {message} (see {self.prog} --help)\n')
        sys.exit(EXIT_USAGE)


# --------------------------------------------------------------------------- input images


def _natural_key(name: str):
    """Sort ``frame_2`` before ``frame_10``."""
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r'(\d+)', name)]


def _demo_scene_images(directory: Path) -> Optional[List[Path]]:
    """Return the images listed by a demo scene's ground_truth.json (not its depth maps)."""
    gt = directory / DEMO_GT_FILE
    if not gt.is_file():
        return None
    import json
    try:
        doc = json.loads(gt.read_text(encoding='utf-8'))
        names = [str(v['image']) for v in doc['views']]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return [directory / name for name in names]


def expand_image_args(args: Sequence[str]) -> List[Path]:
    """
    Expand files and directories into an ordered list of image paths.

    A directory contributes its files with an image extension (``IMAGE_EXTENSIONS``, any
    case), hidden files skipped, in natural order (``frame_2`` before ``frame_10``); a demo
    scene directory (with ``ground_truth.json``) contributes the RGB images it lists, not its
    depth maps. Files are taken as given, in the order given. Raises :class:`CliError` for a
    path that does not exist, a directory without images and a file given twice.
    """
    paths: List[Path] = []
    for arg in args:
        path = Path(arg)
        if path.is_dir():
            listed = _demo_scene_images(path)
            if listed is None:
                listed = sorted((p for p in path.iterdir()
                                 if p.is_file() and not p.name.startswith('.')
                                 and p.suffix.lower() in IMAGE_EXTENSIONS),
                                key=lambda p: _natural_key(p.name))
            if not listed:
                raise CliError(f'{arg}: directory has no images (looked for '
                               f'{", ".join(IMAGE_EXTENSIONS)})')
            paths.extend(listed)
        elif path.exists():
            paths.append(path)
        else:
            raise CliError(f'{arg}: no such file or directory')
    seen = {}
    for path in paths:
        key = os.path.realpath(path)
        if key in seen:
            raise CliError(f'{path}: given twice (also as {seen[key]}); every view must be a '
                           'different image')
        seen[key] = path
    return paths


def split_image_arguments(images: Sequence[str], intrinsics: Sequence[str]
                          ) -> Tuple[List[str], List[str]]:
    """
    Return ``(images, intrinsics)`` with image paths that argparse put into --intrinsics moved.

    ``--intrinsics`` takes one or more values, so in ``--intrinsics K a.png b.png`` argparse
    hands it the images too. A value that exists on disk or ends in an image extension cannot
    be ``fx,fy,cx,cy``: it goes back to the images, keeping the command-line order.
    """
    images, kept = list(images), []
    for text in intrinsics:
        if os.path.exists(text) or Path(text).suffix.lower() in IMAGE_EXTENSIONS:
            images.append(text)
        else:
            kept.append(text)
    return images, kept


def read_image(path: Path):
    """Read an image file as ``[H, W, 3]`` uint8 RGB; raise :class:`CliError` naming the file."""
    import cv2
    import numpy as np
    if not path.is_file():
        raise CliError(f'{path}: no such file' if not path.exists() else f'{path}: not a file')
    try:
        data = np.fromfile(str(path), np.uint8)
    except OSError as exc:
        raise CliError(f'{path}: cannot read ({exc.strerror or exc})') from None
    if data.size == 0:
        raise CliError(f'{path}: empty file, not an image')
    _check_image_header(path, data)
    bgr = cv2.imdecode(data, cv2.IMREAD_COLOR)
    if bgr is None or bgr.ndim != 3:
        raise CliError(f'{path}: not a readable image (OpenCV cannot decode it)')
    if bgr.shape[0] < 2 or bgr.shape[1] < 2:
        raise CliError(f'{path}: image {bgr.shape[1]}x{bgr.shape[0]} is too small')
    return np.ascontiguousarray(bgr[:, :, ::-1])


def _check_image_header(path: Path, data) -> None:
    """
    Refuse, from the header alone, images too large to decode safely and float images.

    A 10000x10000 PNG is a few hundred kilobytes on disk but 300 MB once decoded; a float
    image (depth, HDR) would be silently clipped to 8 bits. Formats Pillow cannot identify
    are left to OpenCV.
    """
    import io
    import warnings

    from PIL import Image as PILImage
    try:
        with warnings.catch_warnings():
            warnings.simplefilter('ignore')  # DecompressionBombWarning: we check the size
            with PILImage.open(io.BytesIO(data.tobytes())) as img:
                (width, height), mode = img.size, img.mode
    except Exception:  # noqa: B902 - not identifiable by Pillow: OpenCV decides below
        return
    if max(width, height) > MAX_IMAGE_SIDE:
        raise CliError(f'{path}: image {width}x{height} exceeds {MAX_IMAGE_SIDE} px per side; '
                       'downscale it first')
    if mode == 'F':
        raise CliError(f'{path}: a floating-point image (depth or HDR data), not an 8/16-bit '
                       'camera image')


def check_image_sizes(paths: Sequence[Path], sizes: Sequence[Tuple[int, int]]) -> None:
    """
    Refuse fewer than 2 images, or images whose long sides differ by more than 2x.

    ``sizes`` are ``(width, height)``. Images of different sizes within that factor are
    accepted (backends resize); beyond it they are almost surely from unrelated cameras.
    """
    if len(paths) < 2:
        given = f' ({paths[0]})' if paths else ''
        raise CliError(f'need at least 2 images, got {len(paths)}{given}')
    longs = [max(s) for s in sizes]
    small = min(range(len(longs)), key=lambda i: longs[i])
    large = max(range(len(longs)), key=lambda i: longs[i])
    if longs[large] > MAX_SIZE_RATIO * longs[small]:
        raise CliError(
            f'{paths[large]} ({sizes[large][0]}x{sizes[large][1]}) and {paths[small]} '
            f'({sizes[small][0]}x{sizes[small][1]}) differ in size by more than '
            f'{MAX_SIZE_RATIO:g}x: give images from cameras of similar resolution')


def parse_intrinsics(text: str, label: str) -> Tuple[float, float, float, float]:
    """Parse ``fx,fy,cx,cy`` (commas or spaces) into 4 floats; ``label`` names the argument."""
    parts = [p for p in re.split(r'[,\s]+', text.strip()) if p]
    if len(parts) != 4:
        raise CliError(f'{label} {text!r}: expected 4 numbers fx,fy,cx,cy, got {len(parts)}')
    try:
        values = tuple(float(p) for p in parts)
    except ValueError:
        raise CliError(f'{label} {text!r}: not numbers (expected fx,fy,cx,cy in pixels)') \
            from None
    if not all(v == v and abs(v) != float('inf') for v in values):
        raise CliError(f'{label} {text!r}: values must be finite')
    if values[0] <= 0 or values[1] <= 0:
        raise CliError(f'{label} {text!r}: focal lengths fx, fy must be > 0')
    return values


def build_intrinsics(texts: Sequence[str], paths: Sequence[Path],
                     sizes: Sequence[Tuple[int, int]]):
    """
    Return one ``[3, 3]`` K per image (or ``None`` each when ``texts`` is empty).

    ``texts`` holds one ``fx,fy,cx,cy`` for all images or one per image, in order. The
    principal point must lie inside its image; one K for all needs images of one size.
    """
    import numpy as np
    if not texts:
        return [None] * len(paths)
    if len(texts) not in (1, len(paths)):
        raise CliError(f'--intrinsics given {len(texts)} times for {len(paths)} images: give it '
                       'once for all images or once per image, in image order')
    if len(texts) == 1 and len(set(sizes)) > 1:
        first = next(i for i, s in enumerate(sizes) if s != sizes[0])
        raise CliError(f'one --intrinsics for images of different sizes ({paths[0]} '
                       f'{sizes[0][0]}x{sizes[0][1]}, {paths[first]} {sizes[first][0]}x'
                       f'{sizes[first][1]}): give one --intrinsics per image')
    result = []
    for i, path in enumerate(paths):
        k = 0 if len(texts) == 1 else i
        label = '--intrinsics' if len(texts) == 1 else f'--intrinsics #{k + 1}'
        fx, fy, cx, cy = parse_intrinsics(texts[k], label)
        width, height = sizes[i]
        if not (0.0 <= cx <= width and 0.0 <= cy <= height):
            raise CliError(f'{label} {texts[k]!r}: principal point ({cx:g}, {cy:g}) lies '
                           f'outside {path} ({width}x{height})')
        result.append(np.array([[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]]))
    return result


def _display_names(paths: Sequence[Path]) -> List[str]:
    """File names for poses.json: the base name, or the path as given when names collide."""
    names = [p.name for p in paths]
    if len(set(names)) == len(names):
        return names
    return [str(p) for p in paths]


# --------------------------------------------------------------------------- progress + summary


class ProgressPrinter:
    """Print one stderr line per :class:`ProgressEvent` stage (not per event)."""

    def __init__(self, stream=None):
        self.stream = stream if stream is not None else sys.stderr
        self.start = time.monotonic()
        self.stage = None
        self.views_reported = 0

    def __call__(self, event) -> None:
        """Report ``event`` when it starts a new stage."""
        if event.stage == 'view_points':
            self.views_reported += 1
        if event.stage == self.stage:
            return
        self.stage = event.stage
        elapsed = time.monotonic() - self.start
        message = f' {event.message}' if event.message else ''
        fraction = min(max(float(event.fraction), 0.0), 1.0)
        self.stream.write(f'[{fraction * 100:5.1f}% {elapsed:6.1f} s] {event.stage}{message}\n')
        self.stream.flush()


def _short(value, limit: int = 86) -> Optional[str]:
    if isinstance(value, (dict, list, tuple)):
        return None
    text = f'{value:.4g}' if isinstance(value, float) else str(value)
    return text if len(text) <= limit else text[:limit - 3] + '...'


def format_summary(result, reason: str, paths: Sequence[Path], outputs: Sequence[Path]) -> str:
    """Return the one-screen summary of a reconstruction."""
    import numpy as np

    from aetherscan_ros.results_io import format_size
    sizes = sorted({(int(w), int(h)) for w, h in result.image_sizes})
    size_text = ', '.join(f'{w}x{h}' for w, h in sizes[:4])
    lines = []
    random_weights = str(dict(result.info).get('model', '')) == RANDOM_WEIGHTS
    if random_weights:
        lines += ['!' * 78,
                  '!! WARNING: this cloud was made by Fast3R with RANDOM WEIGHTS (not a trained',
                  '!! model). The geometry is meaningless; use it only to test the plumbing.',
                  '!' * 78]
    lines.append('aetherscan reconstruct: done')
    if len(reason) > 160:  # the full reason (with its fix) is on stderr above
        reason = reason[:150].rstrip() + ' ... (see above)'
    lines.append(f'  backend   {result.backend}  ({reason})')
    lines.append(f'  views     {result.num_views} of {len(paths)} images, {size_text}')
    lines.append(f'  points    {result.num_points:,}')
    timings = dict(result.timings)
    total = timings.pop('total', None)
    parts = ', '.join(f'{k} {v:.2f} s' for k, v in timings.items()
                      if isinstance(v, (int, float)))
    total_text = f'total {total:.2f} s' if isinstance(total, (int, float)) else 'total ?'
    lines.append(f'  time      {total_text}' + (f'  ({parts})' if parts else ''))
    info = dict(result.info)
    unregistered = [paths[i].name for i in range(min(len(paths), result.num_views))
                    if not np.isfinite(result.poses_c2w[i]).all()]
    if unregistered:
        lines.append(f'  WARNING   {len(unregistered)} view(s) not registered (no pose, no '
                     f'points): {", ".join(unregistered[:6])}'
                     + (' ...' if len(unregistered) > 6 else ''))
    keys = [k for k in SUMMARY_INFO_KEYS if k in info]
    keys += [k for k in info if k not in keys and k not in SUMMARY_INFO_SKIP]
    shown = [(k, _short(info[k])) for k in keys]
    shown = [f'{k}: {v}' for k, v in shown if v is not None][:8]
    if shown:
        lines.append('  info      ' + shown[0])
        lines += ['            ' + item for item in shown[1:]]
    for i, path in enumerate(outputs):
        size = format_size(path.stat().st_size) if path.exists() else 'missing'
        lines.append(('  outputs   ' if i == 0 else '            ') + f'{path}  ({size})')
    return '\n'.join(lines)


# --------------------------------------------------------------------------- verbs


def cmd_reconstruct(args) -> int:
    """Run ``aetherscan reconstruct``."""
    import numpy as np

    from aetherscan_ros.backends import BackendUnavailable, create_backend, ReconstructionError
    from aetherscan_ros.backends.base import Frame
    from aetherscan_ros.preview import render_preview
    from aetherscan_ros.results_io import CLOUD_FILE, POSES_FILE, PREVIEW_FILE, save_result

    image_args, intrinsics_args = split_image_arguments(args.images or [],
                                                        args.intrinsics or [])
    if not image_args:
        raise CliError('no images given: aetherscan reconstruct IMG [IMG ...] -o OUT_DIR')
    paths = expand_image_args(image_args)
    if len(paths) < 2:
        check_image_sizes(paths, [])
    images = [read_image(p) for p in paths]
    sizes = [(int(img.shape[1]), int(img.shape[0])) for img in images]
    check_image_sizes(paths, sizes)
    intrinsics = build_intrinsics(intrinsics_args, paths, sizes)
    out_dir = Path(args.output)
    if out_dir.exists() and not out_dir.is_dir():
        raise CliError(f'-o {out_dir}: exists and is not a directory')
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CliError(f'-o {out_dir}: cannot create directory ({exc.strerror or exc})') \
            from None
    if not os.access(out_dir, os.W_OK):
        raise CliError(f'-o {out_dir}: directory is not writable')

    frames = []
    for path, image, size, K in zip(paths, images, sizes, intrinsics):
        camera = f'{size[0]}x{size[1]}' + ('' if K is None else ' ' + ','.join(
            f'{v:g}' for v in (K[0, 0], K[1, 1], K[0, 2], K[1, 2])))
        frames.append(Frame(image=image, name=path.name, camera=camera, K=K))
    known = 'known intrinsics' if intrinsics[0] is not None else 'intrinsics estimated'
    sys.stderr.write(f'aetherscan reconstruct: {len(frames)} images '
                     f'({", ".join(sorted({f"{w}x{h}" for w, h in sizes}))}), {known}\n')

    try:
        backend, reason = create_backend(args.backend, model=args.model or '',
                                         device=args.device)
    except BackendUnavailable as exc:
        raise CliError(f'backend {args.backend} is unavailable: {exc} '
                       '(run `aetherscan doctor`)', EXIT_FAILED) from None
    except ImportError as exc:
        raise CliError(f'backend {args.backend} cannot be loaded: {exc} '
                       '(run `aetherscan doctor`)', EXIT_FAILED) from None
    sys.stderr.write(f'aetherscan reconstruct: backend {backend.name}: {reason}\n')
    sys.stderr.flush()

    printer = ProgressPrinter()
    try:
        result = backend.reconstruct(frames, progress=printer)
    except ReconstructionError as exc:
        raise CliError(f'{backend.name} could not reconstruct these images: {exc}',
                       EXIT_FAILED) from None
    except BackendUnavailable as exc:
        raise CliError(f'backend {backend.name} is unavailable: {exc}', EXIT_FAILED) from None
    if result.num_points == 0 or not np.isfinite(result.points).all(axis=1).any():
        raise CliError(f'{backend.name} produced no points from these images; nothing written',
                       EXIT_FAILED)
    if result.num_views != len(frames):
        raise CliError(f'{backend.name} returned {result.num_views} poses for {len(frames)} '
                       'images; nothing written', EXIT_FAILED)
    if str(dict(result.info).get('model', '')) == RANDOM_WEIGHTS:
        sys.stderr.write('aetherscan reconstruct: WARNING: this result comes from RANDOM '
                         'WEIGHTS (not a trained model); its geometry is meaningless\n')

    try:
        save_result(result, out_dir, _display_names(paths))
    except OSError as exc:
        raise CliError(f'cannot write the result to {out_dir}: {exc.strerror or exc}',
                       EXIT_FAILED) from None
    outputs = [out_dir / CLOUD_FILE, out_dir / POSES_FILE]
    preview = out_dir / PREVIEW_FILE
    if args.no_preview:
        if preview.exists():
            preview.unlink()  # never leave a preview of an older result beside the new cloud
    else:
        try:
            render_preview(result, preview)
        except (OSError, ValueError, RuntimeError) as exc:
            print(format_summary(result, reason, paths, outputs))
            raise CliError(f'{out_dir / CLOUD_FILE} and {POSES_FILE} written, but the preview '
                           f'failed: {exc}', EXIT_FAILED) from None
        outputs.append(preview)
    print(format_summary(result, reason, paths, outputs))
    return EXIT_OK


def cmd_demo_scene(args) -> int:
    """Run ``aetherscan demo-scene``."""
    if args.views < 2:
        raise CliError(f'--views {args.views}: need at least 2 views')
    if args.width < 32 or args.height < 32 or args.width > 8192 or args.height > 8192:
        raise CliError(f'--width/--height {args.width}x{args.height}: must be 32..8192 pixels')
    from aetherscan_ros.demo.scene import make_scene, write_scene
    out_dir = Path(args.output_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise CliError(f'{out_dir}: exists and is not a directory')
    start = time.monotonic()
    sys.stderr.write(f'aetherscan demo-scene: rendering {args.views} views of '
                     f'{args.width}x{args.height} ({args.path}, seed {args.seed})\n')
    try:
        scene = make_scene(num_views=args.views, width=args.width, height=args.height,
                           seed=args.seed, path=args.path)
    except ValueError as exc:
        raise CliError(str(exc)) from None
    try:
        gt_path = write_scene(scene, out_dir)
    except OSError as exc:
        raise CliError(f'{out_dir}: cannot write the scene ({exc})', EXIT_FAILED) from None
    K = scene.K
    print(f'aetherscan demo-scene: wrote {scene.num_views} views to {out_dir} in '
          f'{time.monotonic() - start:.1f} s')
    print(f'  images        {scene.names[0]} .. {scene.names[-1]}')
    print(f'  ground truth  {gt_path} (extent {scene.extent:.2f} m)')
    print(f'  intrinsics    {K[0, 0]:g},{K[1, 1]:g},{K[0, 2]:g},{K[1, 2]:g}')
    print(f'  next          aetherscan reconstruct {out_dir} -o {out_dir / "result"} '
          f'--intrinsics {K[0, 0]:g},{K[1, 1]:g},{K[0, 2]:g},{K[1, 2]:g}')
    print(f'                aetherscan eval {out_dir / "result"} {out_dir}')
    return EXIT_OK


def cmd_eval(args) -> int:
    """Run ``aetherscan eval``."""
    from aetherscan_ros.results_io import load_result, ResultFormatError
    result_dir, gt_dir = Path(args.result_dir), Path(args.gt_dir)
    for label, path in (('RESULT_DIR', result_dir), ('GT_DIR', gt_dir)):
        if not path.is_dir():
            raise CliError(f'{label} {path}: no such directory')
    try:
        result, names = load_result(result_dir)
    except ResultFormatError as exc:
        raise CliError(str(exc)) from None
    from aetherscan_ros.demo.scene import load_scene
    from aetherscan_ros.evaluation import evaluate, format_scores
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


def _check(status: str, what: str, fix: str = '') -> str:
    text = f'  [{status:<4}] {what}'
    return text + (f'\n           fix: {fix}' if fix else '')


def doctor_report(model: str = '', device: str = 'auto') -> Tuple[List[str], bool]:
    """Return the doctor's lines and whether some backend can run here. Never downloads."""
    os.environ['HF_HUB_OFFLINE'] = '1'  # before anything imports huggingface_hub
    lines = []
    ok_py = (3, 10) <= sys.version_info[:2] <= (3, 13)
    lines.append(_check('ok' if ok_py else 'warn',
                        f'Python {sys.version.split()[0]} ({sys.executable})',
                        '' if ok_py else 'use Python 3.10-3.13 (the ROS 2 wheels exist for '
                        'those only), then `make setup`'))
    distro = os.environ.get('ROS_DISTRO', '')
    ros_errors = []
    for module, what in (('rclpy', 'rclpy'), ('tf2_msgs.msg', 'tf2_msgs'),
                         ('sensor_msgs.msg', 'sensor_msgs')):
        try:
            __import__(module)
        except Exception as exc:  # noqa: B902 - any import failure is a finding here
            ros_errors.append(f'{what}: {type(exc).__name__}: {exc}'.splitlines()[0])
    distro_text = f'ROS_DISTRO={distro}' if distro else 'ROS_DISTRO not set (ROS 2 from wheels?)'
    if ros_errors:
        lines.append(_check('miss', f'ROS 2: {distro_text}; cannot import ' +
                            '; '.join(ros_errors),
                            'source /opt/ros/<distro>/setup.bash before `make setup`, or run '
                            '`make setup` for the ROS 2 Jazzy wheels in .venv'))
    else:
        lines.append(_check('ok', f'ROS 2: {distro_text}; rclpy, tf2_msgs and sensor_msgs '
                            'import'))
    classical_ok = True
    try:
        import cv2
        from aetherscan_ros.backends.classical_sfm import import_pycolmap
        pycolmap = import_pycolmap()  # never import pycolmap directly: see import_pycolmap
        lines.append(_check('ok', f'classical backend: pycolmap {pycolmap.__version__}, '
                            f'OpenCV {cv2.__version__}'))
    except Exception as exc:  # noqa: B902
        classical_ok = False
        lines.append(_check('miss', f'classical backend: {type(exc).__name__}: {exc}',
                            '`make setup` (installs pycolmap and opencv-python-headless)'))
    torch_ok = False
    try:
        import torch
        torch_ok = True
        build = f'CUDA {torch.version.cuda}' if torch.version.cuda else 'CPU-only build'
        lines.append(_check('ok', f'torch {torch.__version__} ({build})'))
    except Exception as exc:  # noqa: B902
        lines.append(_check('miss', f'torch: cannot import ({type(exc).__name__}: {exc})',
                            '`make setup` installs torch 2.13.0 (CPU); for a GPU install the '
                            'CUDA build from pytorch.org first'))
    if torch_ok:
        lines.append(_cuda_line(torch, device))
    lines.append(_memory_line())
    lines.append(_cloud_line())
    weights_ok, weights_line = _weights_line(model)
    lines.append(weights_line)
    if torch_ok and weights_ok:
        pick = 'fast3r (torch works and the weights were found; they are checked on load)'
    elif classical_ok:
        why = 'torch is missing' if not torch_ok else 'no Fast3R weights'
        pick = f'classical ({why})'
    else:
        pick = 'none: neither Fast3R nor the classical backend can run'
    lines.append(f'  backend auto would pick: {pick}')
    return lines, (torch_ok and weights_ok) or classical_ok


def _cuda_line(torch, device: str) -> str:
    try:
        if not torch.cuda.is_available():
            fix = ('' if device != 'cuda' else 'install a CUDA build of torch and an NVIDIA '
                   'driver, or use --device cpu')
            return _check('--', 'CUDA: no CUDA device; Fast3R would run on the CPU in float32 '
                          '(slow)', fix)
        index = torch.cuda.current_device()
        name = torch.cuda.get_device_name(index)
        free, total = torch.cuda.mem_get_info(index)
        dtype = 'bfloat16' if torch.cuda.is_bf16_supported() else 'float16'
        return _check('ok', f'CUDA: {name}, {free / 2**30:.1f} GiB free of '
                      f'{total / 2**30:.1f} GiB; Fast3R would use {dtype}')
    except Exception as exc:  # noqa: B902
        return _check('warn', f'CUDA: query failed ({type(exc).__name__}: {exc})',
                      'check the NVIDIA driver (nvidia-smi)')


def _cloud_line() -> str:
    from aetherscan_ros import cloud
    from aetherscan_ros.process_env import hugepage_malloc_state
    malloc = hugepage_malloc_state()
    if cloud.PACKER == 'c':
        return _check('ok', f'cloud packer: C (aetherscan_ros._cloudpack); huge-page malloc '
                      f'{malloc}')
    return _check('warn', f'cloud packer: {cloud.PACKER}, 3-8x slower than the C one; '
                  f'huge-page malloc {malloc}',
                  'install a C compiler and the Python headers, then `make setup` (or '
                  '`colcon build`) again')


def _memory_line() -> str:
    try:
        import psutil
        mem = psutil.virtual_memory()
        return _check('ok', f'host: {os.cpu_count()} CPU cores, {mem.available / 2**30:.1f} GiB '
                      f'of {mem.total / 2**30:.1f} GiB memory available')
    except Exception as exc:  # noqa: B902
        return _check('--', f'host: {os.cpu_count()} CPU cores (memory unknown: {exc})')


def _weights_line(model: str) -> Tuple[bool, str]:
    try:
        from aetherscan_ros.backends.base import BackendUnavailable
        from aetherscan_ros.models.fast3r.weights import DEFAULT_REPO_ID, locate_checkpoint
    except Exception as exc:  # noqa: B902
        return False, _check('miss', f'Fast3R weights: cannot check ({type(exc).__name__}: '
                             f'{exc})', 'this build lacks the Fast3R backend; reinstall the '
                             'package (`make setup`)')
    target = model or DEFAULT_REPO_ID
    try:
        path = locate_checkpoint(target)
    except BackendUnavailable as exc:
        return False, _check('miss', f'Fast3R weights for {target!r}: {exc}',
                             'see above; until then `auto` uses the classical backend')
    except Exception as exc:  # noqa: B902
        return False, _check('warn', f'Fast3R weights for {target!r}: lookup failed '
                             f'({type(exc).__name__}: {exc})', 'pass --model DIR with '
                             'config.json + model.safetensors')
    note = ''
    try:
        from aetherscan_ros.models.fast3r.weights import RANDOM_MARK
        if _safetensors_metadata(Path(path) / 'model.safetensors').get(RANDOM_MARK) == 'true':
            note = ' -- RANDOM WEIGHTS: a test checkpoint, not a trained model'
    except (ImportError, OSError, ValueError):
        pass
    return True, _check('ok' if not note else 'warn', f'Fast3R weights for {target!r}: {path}'
                        + note, 'pass --model with a trained checkpoint' if note else '')


def _safetensors_metadata(path: Path) -> dict:
    """Read the ``__metadata__`` of a safetensors file from its header (no tensor data)."""
    import json
    import struct
    with open(path, 'rb') as handle:
        (length,) = struct.unpack('<Q', handle.read(8))
        if length > 100_000_000:
            raise ValueError(f'{path}: implausible safetensors header length {length}')
        header = json.loads(handle.read(length).decode('utf-8'))
    meta = header.get('__metadata__') or {}
    return meta if isinstance(meta, dict) else {}


def cmd_doctor(args) -> int:
    """Run ``aetherscan doctor``."""
    lines, usable = doctor_report(args.model or '', args.device)
    print('aetherscan doctor (checks only; never downloads)')
    print('\n'.join(lines))
    return EXIT_OK if usable else EXIT_FAILED


# --------------------------------------------------------------------------- parser + main


def build_parser() -> argparse.ArgumentParser:
    """Return the ``aetherscan`` argument parser."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument('-v', '--verbose', action='count', default=argparse.SUPPRESS,
                        help='more log output (-v info, -vv debug)')
    common.add_argument('--debug', action='store_true', default=argparse.SUPPRESS,
                        help='print the Python traceback of an error')
    parser = _Parser(
        prog='aetherscan', parents=[common],
        description='Multi-view 3D reconstruction from images (Fast3R, or a classical '
                    'COLMAP/OpenCV pipeline when no weights exist).',
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
    rec.add_argument('--backend', choices=('auto', 'fast3r', 'classical'), default='auto',
                     help='auto: Fast3R when its weights and torch work, else classical '
                          '(default: %(default)s)')
    rec.add_argument('--intrinsics', action='extend', nargs='+', metavar='FX,FY,CX,CY',
                     help='pinhole intrinsics in pixels of the input images: once for all '
                          'images, or once per image in order (stereo rigs differ in principal '
                          'point); omitted: estimated')
    rec.add_argument('--model', default='', metavar='PATH_OR_REPO',
                     help='Fast3R checkpoint: a directory with config.json + '
                          'model.safetensors, or a hub repo id (default '
                          'jedyang97/Fast3R_ViT_Large_512). --backend auto uses it only when it '
                          'is already on this machine; --backend fast3r may download it '
                          '(unless HF_HUB_OFFLINE=1)')
    rec.add_argument('--device', choices=('auto', 'cpu', 'cuda'), default='auto',
                     help='Fast3R device: auto = CUDA (bf16/fp16) when present, else CPU fp32')
    rec.add_argument('--no-preview', action='store_true', help='skip preview.png')
    rec.set_defaults(func=cmd_reconstruct)

    demo = verbs.add_parser(
        'demo-scene', parents=[common], help='render a textured demo scene with ground truth',
        description='Render the synthetic textured room from a camera path and write its RGB '
                    'frames (frame_NNN.png), depth maps (depth_NNN.png, uint16 mm), surface '
                    'samples and ground_truth.json (K, camera-to-world poses) to OUT_DIR. '
                    'Deterministic from --seed; nothing is downloaded.')
    demo.add_argument('output_dir', metavar='OUT_DIR')
    demo.add_argument('--views', type=int, default=8, help='number of views (default 8)')
    demo.add_argument('--width', type=int, default=640, help='image width (default 640)')
    demo.add_argument('--height', type=int, default=480, help='image height (default 480)')
    demo.add_argument('--seed', type=int, default=0, help='random seed (default 0)')
    demo.add_argument('--path', default='orbit', metavar='orbit|robot',
                      help='camera path: orbit around the table or a robot-like sideways '
                           'drive (default orbit)')
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
        'doctor', parents=[common], help='check Python, ROS 2, torch, CUDA and Fast3R weights',
        description='Report what this machine has (Python, ROS 2 imports, torch, CUDA device '
                    'and free memory, Fast3R weights) with the fix for anything missing, and '
                    'which backend `auto` would pick. Never downloads (HF_HUB_OFFLINE=1). '
                    'Exit status 1 when no backend can run.')
    doc.add_argument('--model', default='', metavar='PATH_OR_REPO',
                     help='checkpoint to look for (default: the official Fast3R repo id)')
    doc.add_argument('--device', choices=('auto', 'cpu', 'cuda'), default='auto')
    doc.set_defaults(func=cmd_doctor)
    return parser


def _setup_logging(verbosity: int) -> None:
    level = logging.WARNING if verbosity <= 0 else logging.INFO if verbosity == 1 \
        else logging.DEBUG
    logging.basicConfig(level=level, stream=sys.stderr,
                        format='%(levelname)s %(name)s: %(message)s')


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the ``aetherscan`` command; return the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
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


if __name__ == '__main__':
    sys.exit(main())
