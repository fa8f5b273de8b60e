# Copyright 2026 The AetherScan ROS Authors
# SPDX-License-Identifier: Apache-2.0
"""``aetherscan reconstruct``: images -> ``cloud.ply``, ``poses.json``, ``preview.png``."""

from dataclasses import replace
import os
from pathlib import Path
import sys
import textwrap
import time
from typing import List, Optional, Sequence, Tuple

from aetherscan_ros.cli.bag_input import (
    BAG_CAMERA_INFO_SOURCE, bag_summary, check_bag_arguments, read_bag_input)
from aetherscan_ros.cli.common import CliError, EXIT_FAILED, EXIT_OK
from aetherscan_ros.cli.inputs import (
    _display_names, build_camera_models, build_intrinsics, check_image_sizes, expand_image_args,
    read_image, split_camera_info_arguments, split_image_arguments)

RANDOM_WEIGHTS = 'random weights (not a trained model)'
# result.info keys the summary shows first; the others follow while the screen has room
SUMMARY_INFO_KEYS = ('model', 'device', 'dtype', 'method', 'intrinsics', 'lens',
                     'registered_views', 'mean_reprojection_error_px', 'unit')
SUMMARY_INFO_SKIP = ('unregistered', 'unregistered_policy', 'confidence', 'points_per_view',
                     'warning', 'licence')
SUMMARY_WIDTH = 100  # long lines wrap at word boundaries under their label; nothing is cut
SUMMARY_INDENT = ' ' * 12
INTRINSICS_SOURCE = '--intrinsics'  # where known K come from here (the node's: camera_info)
CAMERA_INFO_SOURCE = '--camera-info'  # calibration files: K + lens distortion


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


def _value_text(value) -> Optional[str]:
    """Return an info value as text (None for a list or mapping, which the summary skips)."""
    if isinstance(value, (dict, list, tuple)):
        return None
    return f'{value:.4g}' if isinstance(value, float) else str(value)


def _wrapped(label: str, text: str) -> List[str]:
    """Return ``text`` under a 12-column ``label``, wrapped at word boundaries, never cut."""
    first = f'  {label:<10}' if label else SUMMARY_INDENT
    return textwrap.wrap(text, SUMMARY_WIDTH, initial_indent=first,
                         subsequent_indent=SUMMARY_INDENT, break_long_words=False,
                         break_on_hyphens=False) or [first.rstrip()]


def format_summary(result, reason: str, paths: Sequence[Path], outputs: Sequence[Path],
                   warnings: Sequence[str] = ()) -> str:
    """
    Return the one-screen summary of a reconstruction.

    The backend's ``reason``, ``warnings`` and ``info['warning']`` are shown whole, wrapped at
    word boundaries (the reason is the answer to "why this backend?", and a warning cut
    mid-word loses its fix).
    """
    import numpy as np

    from aetherscan_ros.files.results import format_size
    sizes = sorted({(int(w), int(h)) for w, h in result.image_sizes})
    size_text = ', '.join(f'{w}x{h}' for w, h in sizes[:4])
    lines = []
    random_weights = str(dict(result.info).get('model', '')) == RANDOM_WEIGHTS
    if random_weights:
        lines += ['!' * 78,
                  f'!! WARNING: this cloud was made by {result.backend} with RANDOM WEIGHTS',
                  '!! (not a trained model). The geometry is meaningless; use it only to test',
                  '!! the plumbing.',
                  '!' * 78]
    lines.append('aetherscan reconstruct: done')
    lines += _wrapped('backend', f'{result.backend}  ({reason})')
    if dict(result.info).get('licence'):  # the licence of the weights (or libraries) used
        lines += _wrapped('licence', str(result.info['licence']))
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
    notes = list(warnings)
    if unregistered:
        more = f' and {len(unregistered) - 6} more' if len(unregistered) > 6 else ''
        notes.append(f'{len(unregistered)} view(s) not registered (no pose, no points): '
                     f'{", ".join(unregistered[:6])}{more}')
    if info.get('warning'):
        notes.append(str(info['warning']))
    for note in notes:
        lines += _wrapped('WARNING', note)
    keys = [k for k in SUMMARY_INFO_KEYS if k in info]
    keys += [k for k in info if k not in keys and k not in SUMMARY_INFO_SKIP]
    shown = [(k, _value_text(info[k])) for k in keys]
    shown = [f'{k}: {v}' for k, v in shown if v is not None][:8]
    for i, item in enumerate(shown):
        lines += _wrapped('info' if i == 0 else '', item)
    for i, path in enumerate(outputs):
        size = 'missing' if not path.exists() else format_size(
            sum(f.stat().st_size for f in path.rglob('*') if f.is_file()) if path.is_dir()
            else path.stat().st_size)
        lines.append(('  outputs   ' if i == 0 else '            ') + f'{path}  ({size})')
    return '\n'.join(lines)


def undistorted_frames(frames, paths: Sequence[Path], camera_info: Sequence[str]) -> list:
    """
    Return ``frames`` as pinhole images: lens distortion removed where a camera model says so.

    Each frame's ``camera`` label names its calibration (frames of one camera share one K);
    raises :class:`CliError` naming the file and the calibration when a model does not fit.
    """
    from aetherscan_ros.core.camera_model import CameraModelError
    from aetherscan_ros.core.undistortion import undistort_frame
    out = []
    for i, frame in enumerate(frames):
        try:
            pinhole = undistort_frame(frame)
        except CameraModelError as exc:
            calib = camera_info[0] if len(camera_info) == 1 else camera_info[i]
            raise CliError(f'--camera-info {calib} cannot undistort {paths[i]}: {exc}') \
                from None
        K = pinhole.K
        camera = f'{pinhole.size[0]}x{pinhole.size[1]}' + ('' if K is None else ' ' + ','.join(
            f'{v:g}' for v in (K[0, 0], K[1, 1], K[0, 2], K[1, 2])))
        out.append(replace(pinhole, camera=camera))
    return out


def lens_notes(camera_models, camera_info: Sequence[str]) -> Tuple[str, str]:
    """Return ``(short, long)`` notes on the lenses of ``--camera-info`` ('' without any)."""
    if not camera_info:
        return '', ''
    names = '/'.join(sorted({m.distortion_model for m in camera_models if m.has_distortion}))
    files = ', '.join(dict.fromkeys(Path(t).name for t in camera_info))
    if not names:
        return 'no distortion', f'pinhole, no distortion ({files})'
    return (f'{names} lens, images undistorted',
            f'{names} distortion removed before reconstruction ({files}); K and colours are '
            'those of the undistorted images')


# --------------------------------------------------------------------------- verbs


def cmd_reconstruct(args) -> int:
    """Run ``aetherscan reconstruct``."""
    import numpy as np

    from aetherscan_ros.backends import (
        BackendUnavailable, create_backend, missing_model_path, ReconstructionError)
    from aetherscan_ros.backends.base import Frame
    from aetherscan_ros.files.exports import ExportError, parse_exports, write_exports
    from aetherscan_ros.files.preview import render_preview
    from aetherscan_ros.files.results import CLOUD_FILE, POSES_FILE, PREVIEW_FILE, save_result

    image_args, intrinsics_args = split_image_arguments(args.images or [],
                                                        args.intrinsics or [])
    image_args, camera_info_args = split_camera_info_arguments(
        image_args, getattr(args, 'camera_info', None) or [])
    check_bag_arguments(args, image_args)
    try:
        exports = parse_exports(getattr(args, 'export', None) or [])
    except ExportError as exc:
        raise CliError(f'--export: {exc}') from None
    bag = read_bag_input(args) if getattr(args, 'bag', None) else None
    if not image_args and bag is None:
        raise CliError('no images given: aetherscan reconstruct IMG [IMG ...] -o OUT_DIR '
                       '(or --bag BAG)')
    model = (args.model or '').strip()
    if args.backend != 'classical' and missing_model_path(model) is not None:
        raise CliError(f'--model {model}: no such file or directory (give a MapAnything or '
                       'Fast3R checkpoint directory with config.json and model.safetensors, or '
                       'a hub repo id owner/name)')
    if bag is not None:
        paths, images = bag.labels, bag.images
    else:
        paths = expand_image_args(image_args)
        if len(paths) < 2:
            check_image_sizes(paths, [])
        images = [read_image(p) for p in paths]
    sizes = [(int(img.shape[1]), int(img.shape[0])) for img in images]
    check_image_sizes(paths, sizes)
    intrinsics = build_intrinsics(intrinsics_args, paths, sizes)
    camera_models = build_camera_models(camera_info_args, paths, sizes)
    if bag is not None and not camera_info_args and not intrinsics_args and bag.has_calibration:
        camera_models, camera_info_args = bag.camera_models, bag.calibration_labels
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

    frames = [Frame(image=image, name=path.name, K=K, camera_model=cam)
              for path, image, K, cam in zip(paths, images, intrinsics, camera_models)]
    frames = undistorted_frames(frames, paths, camera_info_args)
    source = CAMERA_INFO_SOURCE if camera_info_args else INTRINSICS_SOURCE
    if bag is not None:
        sys.stderr.write(bag_summary(bag, args.bag) + '\n')
        if camera_info_args is bag.calibration_labels:
            source = BAG_CAMERA_INFO_SOURCE
    lens_short, lens = lens_notes(camera_models, camera_info_args)
    known = (f'intrinsics from {source}' + (f' ({lens_short})' if lens_short else '')
             if frames[0].K is not None else 'intrinsics estimated by the backend')
    options = {'classical.intrinsics_source': source}
    sys.stderr.write(f'aetherscan reconstruct: {len(frames)} images '
                     f'({", ".join(sorted({f"{w}x{h}" for w, h in sizes}))}), {known}\n')

    try:
        backend, reason = create_backend(args.backend, model=model, device=args.device,
                                         options=options)
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
    if dict(result.info).get('focal_source') == 'camera_info':  # Fast3R: K came with frames
        result = replace(result, info={**result.info, 'focal_source': source})
    if lens:
        result = replace(result, info={**result.info, 'lens': lens})
    warnings = []
    if bag is not None:
        result, note = bag.anchor(result)
        warnings += [note] if note else []
    if str(dict(result.info).get('intrinsics', '')).startswith('camera_info (given'):
        result = replace(result, info={**result.info,  # MapAnything took the K as inputs
                                       'intrinsics': f'{source} (given to the model)'})
    if model and backend.name not in ('fast3r', 'mapanything'):
        warnings.append(f'--model {model} was not used (see the reason of the backend above)')
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
            print(format_summary(result, reason, paths, outputs, warnings))
            raise CliError(f'{out_dir / CLOUD_FILE} and {POSES_FILE} written, but the preview '
                           f'failed: {exc}', EXIT_FAILED) from None
        outputs.append(preview)
    try:
        report = write_exports(result, out_dir, exports, [f.image for f in frames])
        outputs += report.paths
        sys.stderr.write(''.join(f'aetherscan reconstruct: {note}\n' for note in report.notes))
    except (ExportError, OSError) as exc:
        raise CliError(f'{out_dir / CLOUD_FILE} written, but --export failed: {exc}',
                       EXIT_FAILED) from None
    print(format_summary(result, reason, paths, outputs, warnings))
    return EXIT_OK
