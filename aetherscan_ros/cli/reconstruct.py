# Copyright 2026 The AetherScan ROS Authors
# SPDX-License-Identifier: Apache-2.0
"""``aetherscan reconstruct``: images -> ``cloud.ply``, ``poses.json``, ``preview.png``."""

import os
from pathlib import Path
import sys
import time
from typing import Optional, Sequence

from aetherscan_ros.cli.common import CliError, EXIT_FAILED, EXIT_OK
from aetherscan_ros.cli.inputs import (
    _display_names, build_intrinsics, check_image_sizes, expand_image_args, read_image,
    split_image_arguments)

RANDOM_WEIGHTS = 'random weights (not a trained model)'
# result.info keys the summary shows first; the others follow while the screen has room
SUMMARY_INFO_KEYS = ('model', 'device', 'dtype', 'method', 'intrinsics', 'registered_views',
                     'mean_reprojection_error_px', 'unit')
SUMMARY_INFO_SKIP = ('unregistered', 'unregistered_policy', 'confidence', 'points_per_view')


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

    from aetherscan_ros.files.results import format_size
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
    from aetherscan_ros.files.preview import render_preview
    from aetherscan_ros.files.results import CLOUD_FILE, POSES_FILE, PREVIEW_FILE, save_result

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
