# Copyright 2026 The AetherScan ROS Authors
# SPDX-License-Identifier: Apache-2.0
"""
``aetherscan reconstruct --bag``: a rosbag2 bag's camera images as the views, ROS-free.

:func:`read_bag_input` reads the selected images with :mod:`aetherscan_ros.files.bag` (their
camera_info as the calibration, raw images undistorted as with ``--camera-info``);
:meth:`BagInput.anchor` places the result in ``--fixed-frame`` in metres from the bag's TF at
the image stamps (:func:`aetherscan_ros.core.anchoring.estimate_anchor`, the node's method and
defaults), or says why it cannot.
"""

from dataclasses import dataclass, replace
from typing import List, Optional, Sequence, Tuple

from aetherscan_ros.cli.common import CliError

# the node's parameter defaults (anchor_min_baseline, anchor_max_residual)
ANCHOR_OPTIONS = {'min_baseline_m': 0.05, 'max_residual_m': 0.05}
BAG_CAMERA_INFO_SOURCE = 'camera_info (bag)'


class ImageLabel(str):
    """The name of a bag image (``topic@seconds``); ``.name`` as a file path has one."""

    @property
    def name(self) -> str:
        """Return the label itself (poses.json and messages name the image by it)."""
        return str(self)


@dataclass
class BagInput:
    """The images of a bag (``[H, W, 3]`` uint8 RGB) and what the CLI needs beside them."""

    labels: List[ImageLabel]
    images: list
    camera_models: list
    calibration_labels: List[str]  # per image, the camera_info topic (for error messages)
    stamps_ns: List[int]
    frame_ids: List[str]
    tf: object
    fixed_frame: str = ''

    @property
    def has_calibration(self) -> bool:
        """Return whether every image came with a camera_info."""
        return all(m is not None for m in self.camera_models)

    def tf_poses(self) -> Tuple[object, List[str]]:
        """Return ``[V, 4, 4]`` camera-to-fixed poses (NaN: lookup failed) and the reasons."""
        import numpy as np

        from aetherscan_ros.core.tf_buffer import TfLookupError
        poses = np.full((len(self.labels), 4, 4), np.nan)
        reasons = []
        for i, (frame_id, stamp) in enumerate(zip(self.frame_ids, self.stamps_ns)):
            if not frame_id:
                reasons.append(f'{self.labels[i]}: the image has no header.frame_id')
                continue
            try:
                poses[i] = self.tf.lookup(self.fixed_frame, frame_id.lstrip('/'), stamp)
            except TfLookupError as exc:
                reasons.append(f'{self.labels[i]}: {frame_id} in {self.fixed_frame}: {exc}')
        return poses, reasons

    def anchor(self, result) -> Tuple[object, Optional[str]]:
        """
        Return ``(result, note)``: in ``fixed_frame`` (metres) when anchored, else as it was.

        The note says why it was not anchored (``None`` when anchored or not asked for).
        """
        if not self.fixed_frame:
            return result, None
        from aetherscan_ros.core.anchoring import apply_anchor, estimate_anchor
        poses, reasons = self.tf_poses()
        anchor = estimate_anchor(result.poses_c2w, poses, **ANCHOR_OPTIONS)
        if not anchor.ok:
            more = f' and {len(reasons) - 1} more' if len(reasons) > 1 else ''
            failed = f' (TF: {reasons[0]}{more})' if reasons else ''
            return result, (f'not anchored in {self.fixed_frame}: {anchor.reason}{failed}; '
                            'written unanchored (no metric scale)')
        points, poses_fixed = apply_anchor(anchor, result.points, result.poses_c2w)
        info = dict(result.info)
        info.update(metric_scale=True, anchor=anchor.to_dict(), world_frame=self.fixed_frame)
        anchored = replace(result, points=points.astype(result.points.dtype, copy=False),
                           poses_c2w=poses_fixed, info=info)
        return anchored, None


def _seconds(value, flag: str) -> Optional[float]:
    if value is None:
        return None
    if not (value == value and abs(value) != float('inf')) or value < 0:
        raise CliError(f'{flag} {value!r}: give seconds from the start of the bag, >= 0')
    return float(value)


def read_bag_input(args) -> BagInput:
    """Read ``args.bag`` as ``--topics``, ``--start``, ``--end``, ``--stride`` select."""
    from aetherscan_ros.files.bag import BagError, camera_info_topic, read_bag
    start = _seconds(getattr(args, 'start', None), '--start')
    end = _seconds(getattr(args, 'end', None), '--end')
    stride = getattr(args, 'stride', None)
    stride = 1 if stride is None else int(stride)
    if stride < 1:
        raise CliError(f'--stride {stride}: must be >= 1')
    try:
        contents = read_bag(args.bag, getattr(args, 'topics', None) or (), start, end, stride)
    except BagError as exc:
        raise CliError(f'--bag {exc}') from None
    fixed = (getattr(args, 'fixed_frame', '') or '').strip().lstrip('/')
    if fixed and contents.tf is None:
        raise CliError(f'--bag {contents.path}: --fixed-frame {fixed} needs TF, but the bag has '
                       'no /tf or /tf_static')
    if fixed and fixed not in contents.tf.frames() and \
            fixed not in set(contents.tf.frames().values()):
        known = ', '.join(sorted(set(contents.tf.frames()) | set(contents.tf.frames().values())))
        raise CliError(f'--bag {contents.path}: --fixed-frame {fixed} is not a frame of the '
                       f"bag's TF (frames: {known})")
    images = contents.images
    return BagInput(labels=[ImageLabel(im.name) for im in images],
                    images=[im.image for im in images],
                    camera_models=[im.camera_model for im in images],
                    calibration_labels=[camera_info_topic(im.topic) for im in images],
                    stamps_ns=[im.stamp_ns for im in images],
                    frame_ids=[im.frame_id for im in images], tf=contents.tf,
                    fixed_frame=fixed)


def bag_summary(bag_input: BagInput, path: str) -> str:
    """Return the stderr line that says what was read from the bag."""
    topics = sorted({label.rpartition('@')[0] for label in bag_input.labels})
    calib = 'camera_info' if bag_input.has_calibration else 'no camera_info'
    tf = 'no TF' if bag_input.tf is None else 'TF'
    return (f'aetherscan reconstruct: bag {path}: {len(bag_input.labels)} images from '
            f'{", ".join(topics)} ({calib}, {tf})')


def check_bag_arguments(args, image_args: Sequence[str]) -> None:
    """Refuse image files together with ``--bag`` and the bag-only flags without it."""
    if getattr(args, 'bag', None):
        if image_args:
            raise CliError(f'give image files or --bag, not both (got {image_args[0]} and '
                           f'--bag {args.bag})')
        return
    for flag, attr in (('--topics', 'topics'), ('--start', 'start'), ('--end', 'end'),
                       ('--fixed-frame', 'fixed_frame')):
        if getattr(args, attr, None):
            raise CliError(f'{flag} needs --bag (it selects from a rosbag2 bag)')
    if getattr(args, 'stride', None) not in (None, 1):
        raise CliError('--stride needs --bag (it selects from a rosbag2 bag)')


def add_bag_arguments(parser) -> None:
    """Add ``--bag``, ``--topics``, ``--start``, ``--end``, ``--stride``, ``--fixed-frame``."""
    group = parser.add_argument_group(
        'rosbag2 input', 'Views from a bag (.db3 or .mcap, read without ROS) instead of image '
        'files: Image or CompressedImage topics, their NS/camera_info (raw images are '
        'undistorted) and /tf, /tf_static.')
    group.add_argument('--bag', metavar='BAG',
                       help='rosbag2 directory (or its .db3/.mcap file) to read the views from')
    group.add_argument('--topics', nargs='+', metavar='TOPIC',
                       help='image topics to read (default: every Image/CompressedImage topic)')
    group.add_argument('--start', type=float, metavar='SEC',
                       help='skip images received before SEC seconds from the bag start')
    group.add_argument('--end', type=float, metavar='SEC',
                       help='skip images received from SEC seconds after the bag start on')
    group.add_argument('--stride', type=int, default=1, metavar='N',
                       help='keep every N-th image of each topic (default 1)')
    group.add_argument('--fixed-frame', default='', metavar='FRAME',
                       help="place the result in FRAME (e.g. odom, map) in metres from the bag's "
                            "TF at the image stamps (the node's fixed_frame anchoring); "
                            'refused with a reason when TF cannot fix the scale')
