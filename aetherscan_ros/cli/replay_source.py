# Copyright 2026 The AetherScan ROS Authors
# SPDX-License-Identifier: Apache-2.0
"""
What ``aetherscan play`` replays, read without ROS: a bag, a folder of images or a video.

:func:`source_kind` tells them apart; :func:`still_frames` yields the images of a folder (as
``aetherscan reconstruct`` expands it) and :func:`video_frames` the frames of a video file
(OpenCV), each with its time in seconds from the first. Bags are
:mod:`aetherscan_ros.files.bag`. Problems raise :class:`CliError` naming the file.
"""

from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Optional

from aetherscan_ros.cli.common import CliError

VIDEO_EXTENSIONS = ('.mp4', '.avi', '.mkv', '.mov', '.webm', '.m4v', '.mpg', '.mpeg', '.ogv')
DEFAULT_FOLDER_FPS = 2.0


@dataclass(frozen=True)
class StillFrame:
    """One image to publish: ``[H, W, 3]`` uint8 RGB, its name and its time (s from start)."""

    name: str
    image: object  # np.ndarray [H, W, 3] uint8
    t_s: float


def source_kind(path: str) -> str:
    """Return ``bag``, ``images`` or ``video`` for ``path``; raise :class:`CliError` otherwise."""
    p = Path(path)
    if not p.exists():
        raise CliError(f'{path}: no such file or directory')
    if (p.is_dir() and (p / 'metadata.yaml').is_file()) or \
            (p.is_file() and p.suffix.lower() in ('.db3', '.mcap')):
        return 'bag'
    if p.is_dir():
        return 'images'
    if p.suffix.lower() in VIDEO_EXTENSIONS:
        return 'video'
    raise CliError(f'{path}: not a bag (directory with metadata.yaml, .db3, .mcap), a '
                   f'directory of images or a video ({", ".join(VIDEO_EXTENSIONS)})')


def still_frames(path: str, fps: float) -> Iterator[StillFrame]:
    """Yield the images of a directory in natural order, ``1 / fps`` seconds apart."""
    from aetherscan_ros.cli.inputs import expand_image_args, read_image
    paths = expand_image_args([path])
    for i, image_path in enumerate(paths):
        yield StillFrame(image_path.name, read_image(image_path), i / fps)


def video_fps(path: str) -> float:
    """Return the frame rate a video file declares (0 when it declares none)."""
    import cv2
    import numpy as np
    cap = cv2.VideoCapture(str(path))
    try:
        if not cap.isOpened():
            raise CliError(f'{path}: cannot open the video (OpenCV cannot decode it)')
        fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
    finally:
        cap.release()
    return fps if np.isfinite(fps) and fps > 0 else 0.0


def video_frames(path: str, fps: Optional[float] = None) -> Iterator[StillFrame]:
    """
    Yield the frames of a video as RGB, ``1 / fps`` seconds apart (default: the file's rate).

    Raises :class:`CliError` when OpenCV cannot open the file or it holds no frame.
    """
    import cv2
    import numpy as np
    rate = fps or video_fps(path) or DEFAULT_FOLDER_FPS
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        raise CliError(f'{path}: cannot open the video (OpenCV cannot decode it)')
    name = Path(path).name
    try:
        index = 0
        while True:
            ok, bgr = cap.read()
            if not ok or bgr is None:
                break
            yield StillFrame(f'{name}#{index}', np.ascontiguousarray(bgr[:, :, ::-1]),
                             index / rate)
            index += 1
    finally:
        cap.release()
    if index == 0:
        raise CliError(f'{path}: the video holds no frame OpenCV can decode')
