# Copyright 2026 The AetherScan ROS Authors
# SPDX-License-Identifier: Apache-2.0
"""
``aetherscan play DIR|VIDEO``: a folder of images or a video published as a camera driver.

Each frame goes out as ``sensor_msgs/Image`` rgb8 on ``--topic`` (default
``/camera/image_raw``, or ``NS/image_raw`` with ``--namespace``) or, with ``--transport
compressed``, as ``CompressedImage`` (jpeg/png) on ``TOPIC/compressed``; ``camera_info`` beside
it from ``--camera-info FILE`` (camera_calibration_parsers YAML), ``--intrinsics fx,fy,cx,cy``,
or a ``camera_info.yaml`` in the folder (``aetherscan demo-scene`` writes one). Frames are
``1 / --rate`` seconds apart (a video: its own rate by default), stamped with the wall clock,
or with ``--clock`` with a replay time published on ``/clock`` that starts at the wall clock.
"""

from pathlib import Path
import time

from aetherscan_ros.cli.common import CliError, EXIT_FAILED, EXIT_OK

NS_PER_S = 1_000_000_000
FOLDER_CALIBRATION = 'camera_info.yaml'


def calibration(args, kind: str):
    """Return ``(CameraModel or None, where it came from)`` for the frames' camera_info."""
    from aetherscan_ros.core.calibration_file import read_calibration_yaml
    from aetherscan_ros.core.camera_model import CameraModel, CameraModelError
    if args.camera_info:
        try:
            return read_calibration_yaml(args.camera_info), args.camera_info
        except CameraModelError as exc:
            raise CliError(f'--camera-info {exc}') from None
    if args.intrinsics:
        from aetherscan_ros.cli.inputs import parse_intrinsics
        fx, fy, cx, cy = parse_intrinsics(args.intrinsics, '--intrinsics')
        return CameraModel.pinhole([[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]]), \
            '--intrinsics'
    folder_file = Path(args.source) / FOLDER_CALIBRATION
    if kind == 'images' and folder_file.is_file():
        try:
            return read_calibration_yaml(folder_file), str(folder_file)
        except CameraModelError as exc:
            raise CliError(f'{exc}') from None
    return None, ''


def _sized(model, width: int, height: int, source: str, name: str):
    """Return ``model`` for ``width`` x ``height`` images; refuse a calibration of another size."""
    from aetherscan_ros.core.camera_model import CameraModel
    if model is None:
        return None
    if (model.width, model.height) == (0, 0):
        return CameraModel.pinhole(model.K, width, height)
    if tuple(model.image_size) != (width, height):
        w, h = model.image_size
        raise CliError(f'{source}: describes {w}x{h} images but {name} is {width}x{height}')
    return model


def play_frames(args, kind: str, publishing) -> int:
    """Publish the frames of a folder (``kind`` images) or a video; return the exit status."""
    from sensor_msgs.msg import CameraInfo, CompressedImage, Image

    from aetherscan_ros.cli.replay_source import (
        DEFAULT_FOLDER_FPS, still_frames, video_fps, video_frames)
    from aetherscan_ros.demo.publisher import camera_info_msg
    from aetherscan_ros.ros.images import rgb_to_compressed_msg, rgb_to_image_msg
    model, calib_source = calibration(args, kind)
    rate = float(args.rate) if args.rate is not None else (
        DEFAULT_FOLDER_FPS if kind == 'images' else (video_fps(args.source)
                                                     or DEFAULT_FOLDER_FPS))

    def frames():
        return still_frames(args.source, rate) if kind == 'images' else \
            video_frames(args.source, rate)

    base = (args.topic or f'{(args.namespace or "/camera").rstrip("/")}/image_raw').rstrip('/')
    compressed = args.transport == 'compressed'
    topic = base + ('/compressed' if compressed and not base.endswith('/compressed') else '')
    image_base = base[:-len('/compressed')] if base.endswith('/compressed') else base
    info_topic = image_base.rpartition('/')[0] + '/camera_info'
    frame_id = args.frame_id or 'camera_optical_frame'
    out = publishing(args.clock)
    sent = 0
    try:
        out.publisher(topic, CompressedImage if compressed else Image)
        if model is not None:
            out.publisher(info_topic, CameraInfo)
        out.note(f'waiting for a subscriber on {topic} (up to {args.wait:g} s)')
        out.wait_for_subscriber([topic], args.wait)
        calib = f', camera_info from {calib_source} on {info_topic}' if model else \
            ', no camera_info (give --camera-info or --intrinsics for known intrinsics)'
        clock = ' and /clock' if args.clock else ''
        out.note(f'playing {args.source} at {rate:g} fps on {topic}{calib}{clock}')
        sim0 = time.time_ns()
        loop, period_s = 0, 1.0 / rate
        while True:
            wall0 = time.monotonic()
            last_t = 0.0
            loop_start = sim0

            def sim_at(wall: float, start=loop_start, w0=wall0) -> int:
                return start + int((wall - w0) * NS_PER_S)

            for frame in frames():
                last_t = frame.t_s
                out.pace(wall0 + frame.t_s, sim_at)
                stamp = sim_at(wall0 + frame.t_s) if args.clock else time.time_ns()
                out.clock(stamp, force=True)
                height, width = frame.image.shape[:2]
                cam = _sized(model, width, height, calib_source, frame.name)
                if cam is not None:
                    out.publish(info_topic, CameraInfo, camera_info_msg(cam, stamp, frame_id))
                msg = rgb_to_compressed_msg(frame.image, args.format, stamp_ns=stamp,
                                            frame_id=frame_id) if compressed else \
                    rgb_to_image_msg(frame.image, stamp, frame_id)
                out.publish(topic, CompressedImage if compressed else Image, msg)
                sent += 1
            loop += 1
            sim0 = sim_at(wall0 + last_t + period_s)
            out.pace(wall0 + last_t + period_s, sim_at)
            if not args.loop:
                break
        out.note(f'done: {sent} images published' + (f' in {loop} loops' if loop > 1 else ''))
    finally:
        out.close()
    return EXIT_OK if sent else EXIT_FAILED
