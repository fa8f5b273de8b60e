# Copyright 2026 The AetherScan ROS Authors
# SPDX-License-Identifier: Apache-2.0
"""
rosbag2 in, without ROS: camera images, their camera_info and TF from ``.db3`` / ``.mcap`` bags.

Read with the ``rosbags`` package (pure Python). A bag is a rosbag2 directory (with
``metadata.yaml``) or a ``.db3`` / ``.mcap`` file inside one. What is read, as the node reads it
live:

* image topics: ``sensor_msgs/msg/Image`` (every encoding of
  :mod:`aetherscan_ros.core.image_codec`) and ``sensor_msgs/msg/CompressedImage`` (jpeg/png);
  default every image topic of the bag;
* camera_info: for ``NS/image_raw`` (or ``NS/image_raw/compressed``) the topic
  ``NS/camera_info``; each image gets the calibration whose stamp is nearest to its own, as a
  :class:`~aetherscan_ros.core.camera_model.CameraModel` (a rectified topic, ``image_rect*``, is
  a pinhole image with ``P``'s intrinsics; a camera_info without width/height is taken as K);
* TF: ``/tf`` and ``/tf_static`` into a :class:`~aetherscan_ros.core.tf_buffer.TfBuffer` that
  holds the whole bag, so camera poses can be looked up at the image stamps.

Selection: ``start_s`` / ``end_s`` are seconds from the start of the bag (receive time) and
``stride`` keeps every n-th image of each topic. Every problem raises :class:`BagError`, one
line naming the bag (and the topic) and the reason.
"""

from dataclasses import dataclass, replace
import logging
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np

from aetherscan_ros.core.camera_model import CameraModel, CameraModelError
from aetherscan_ros.core.image_codec import compressed_to_rgb, ConversionError, image_to_rgb
from aetherscan_ros.core.tf_buffer import TfBuffer, TfInputError

_LOG = logging.getLogger(__name__)
IMAGE_TYPE = 'sensor_msgs/msg/Image'
COMPRESSED_TYPE = 'sensor_msgs/msg/CompressedImage'
CAMERA_INFO_TYPE = 'sensor_msgs/msg/CameraInfo'
TF_TYPE = 'tf2_msgs/msg/TFMessage'
TF_TOPICS = ('/tf', '/tf_static')
NS_PER_S = 1_000_000_000
MAX_IMAGE_SIDE = 8192


class BagError(ValueError):
    """A bag that cannot be used; the message names the bag (and topic) and the reason."""


@dataclass(frozen=True)
class BagImage:
    """
    One camera image read from a bag.

    ``image`` is ``[H, W, 3]`` uint8 RGB; ``stamp_ns`` the header stamp (the receive time when
    the header has none); ``camera_model`` the topic's calibration (``None``: no camera_info).
    """

    topic: str
    stamp_ns: int
    frame_id: str
    image: np.ndarray
    camera_model: Optional[CameraModel] = None

    @property
    def name(self) -> str:
        """Return ``topic@seconds``, the image's name in messages and poses.json."""
        return f'{self.topic}@{self.stamp_ns / NS_PER_S:.3f}'


@dataclass
class BagContents:
    """The images selected from a bag, in stamp order, and the bag's TF (``None``: no TF)."""

    path: Path
    images: List[BagImage]
    topics: Tuple[str, ...]
    tf: Optional[TfBuffer]
    start_ns: int
    end_ns: int


def resolve_bag(path) -> Path:
    """Return the rosbag2 directory of ``path`` (the directory, or a storage file inside it)."""
    path = Path(path)
    if not path.exists():
        raise BagError(f'{path}: no such bag (give a rosbag2 directory or its .db3/.mcap file)')
    if path.is_file():
        if path.suffix.lower() not in ('.db3', '.mcap'):
            raise BagError(f'{path}: not a rosbag2 bag (expected a directory with '
                           'metadata.yaml, or a .db3/.mcap file)')
        path = path.parent
    if not (path / 'metadata.yaml').is_file():
        raise BagError(f'{path}: not a rosbag2 bag (no metadata.yaml; a bag recorded by '
                       '`ros2 bag record` is a directory holding one)')
    return path


def camera_info_topic(image_topic: str) -> str:
    """Return the camera_info topic beside an image topic (``/a/image_raw/compressed`` too)."""
    topic = image_topic[:-len('/compressed')] if image_topic.endswith('/compressed') \
        else image_topic
    parent = topic.rpartition('/')[0]
    return f'{parent}/camera_info'


def open_bag(bag: Path):
    """Return an open ``rosbags`` AnyReader of the bag directory ``bag`` (close it after)."""
    from rosbags.highlevel import AnyReader
    from rosbags.typesys import get_typestore, Stores
    try:
        reader = AnyReader([bag], default_typestore=get_typestore(Stores.ROS2_JAZZY))
        reader.open()
    except Exception as exc:  # noqa: B902 - rosbags, sqlite3 and mcap raise their own types
        raise BagError(f'{bag}: cannot open the bag (corrupt or truncated?): '
                       f'{type(exc).__name__}: {_first_line(exc)}') from None
    return reader


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def select_image_topics(bag: Path, types: Dict[str, str], topics: Sequence[str]) -> List[str]:
    """Return the image topics to read: ``topics`` checked, or every image topic of the bag."""
    images = [t for t, typ in sorted(types.items()) if typ in (IMAGE_TYPE, COMPRESSED_TYPE)]
    listing = ', '.join(images) if images else 'none'
    if not topics:
        if not images:
            found = ', '.join(f'{t} ({typ})' for t, typ in sorted(types.items())) or 'none'
            raise BagError(f'{bag}: no image topics (sensor_msgs/msg/Image or CompressedImage) '
                           f'in the bag; its topics: {found}')
        return images
    for topic in topics:
        if topic not in types:
            raise BagError(f'{bag}: no topic {topic} in the bag (image topics: {listing})')
        if types[topic] not in (IMAGE_TYPE, COMPRESSED_TYPE):
            raise BagError(f'{bag}: topic {topic} is {types[topic]}, not an image topic '
                           f'(image topics: {listing})')
    return list(dict.fromkeys(topics))


def list_image_topics(path) -> List[str]:
    """
    Return the image topics a node subscribes to for the bag at ``path``.

    Raw topics as they are, compressed ones (``.../compressed``) as their base topic (the node
    then needs ``image_transport: compressed``); :class:`BagError` when the bag has none.
    """
    bag = resolve_bag(path)
    reader = open_bag(bag)
    try:
        types = {c.topic: c.msgtype for c in reader.connections}
    finally:
        reader.close()
    topics = select_image_topics(bag, types, ())
    return list(dict.fromkeys(t[:-len('/compressed')] if t.endswith('/compressed') else t
                              for t in topics))


def iter_messages(reader, topics: Sequence[str], bag: Path,
                  start_ns: Optional[int] = None,
                  stop_ns: Optional[int] = None) -> Iterator[Tuple[str, str, int, bytes]]:
    """
    Yield ``(topic, msgtype, receive time ns, raw CDR bytes)`` of ``topics`` in time order.

    A storage error mid-bag (truncated file, corrupt chunk) raises :class:`BagError`.
    """
    conns = [c for c in reader.connections if c.topic in set(topics)]
    if not conns:
        return
    try:
        for conn, t_ns, raw in reader.messages(connections=conns, start=start_ns, stop=stop_ns):
            yield conn.topic, conn.msgtype, int(t_ns), raw
    except BagError:
        raise
    except Exception as exc:  # noqa: B902 - rosbags, sqlite3 and mcap raise their own types
        raise BagError(f'{bag}: cannot read the bag (corrupt or truncated?): '
                       f'{type(exc).__name__}: {_first_line(exc)}') from None


def _stamp_ns(msg, fallback_ns: int) -> int:
    stamp = int(msg.header.stamp.sec) * NS_PER_S + int(msg.header.stamp.nanosec)
    return stamp if stamp > 0 else fallback_ns


def _camera_model(msg) -> CameraModel:
    """Return the CameraModel of a deserialised CameraInfo (as the node's camera_info_to_model)."""
    k = np.asarray(msg.k, np.float64).reshape(-1)
    if k.size != 9 or not np.all(np.isfinite(k)):
        raise CameraModelError('K must be 9 finite values', 'k')
    return CameraModel.from_fields(
        int(msg.width), int(msg.height), str(msg.distortion_model), list(msg.d), list(k),
        list(msg.r), list(msg.p), int(msg.binning_x), int(msg.binning_y), msg.roi)


def _model_for_image(model: CameraModel, topic: str, size: Tuple[int, int]) -> CameraModel:
    """Return the model of an image of ``size`` on ``topic`` (rectified topics: P, no D)."""
    base = topic[:-len('/compressed')] if topic.endswith('/compressed') else topic
    if base.rstrip('/').rpartition('/')[2].startswith('image_rect'):  # as the node decides
        model = model.for_rectified_image()
    if (model.width, model.height) == (0, 0):
        return CameraModel.pinhole(model.K_eff)
    if tuple(model.image_size) != tuple(size):
        w, h = model.image_size
        raise CameraModelError(f'camera_info is for {w}x{h} but the image is '
                               f'{size[0]}x{size[1]}')
    return model


def _add_tf(tf: TfBuffer, msg, static: bool) -> int:
    """Store a TFMessage's transforms; return how many were refused."""
    refused = 0
    for t in msg.transforms:
        tr, rot = t.transform.translation, t.transform.rotation
        try:
            stored = tf.set_transform(
                t.header.frame_id.lstrip('/'), t.child_frame_id.lstrip('/'),
                _stamp_ns(t, 0), (tr.x, tr.y, tr.z), (rot.x, rot.y, rot.z, rot.w),
                static=static)
        except TfInputError as exc:
            _LOG.warning('TF from the bag ignored: %s', exc)
            stored = False
        refused += not stored
    return refused


def read_bag(path, topics: Sequence[str] = (), start_s: Optional[float] = None,
             end_s: Optional[float] = None, stride: int = 1,
             max_side: int = MAX_IMAGE_SIDE) -> BagContents:
    """
    Read the selected camera images of a bag, their calibrations and the bag's TF.

    Raises :class:`BagError` for a missing, corrupt or truncated bag, an unknown or non-image
    topic, a bad image or camera_info (naming the topic and the stamp) and a selection that
    holds no image.
    """
    if stride < 1:
        raise BagError(f'stride must be >= 1, got {stride}')
    if start_s is not None and end_s is not None and end_s <= start_s:
        raise BagError(f'end {end_s:g} s is not after start {start_s:g} s')
    bag = resolve_bag(path)
    reader = open_bag(bag)
    try:
        types = {c.topic: c.msgtype for c in reader.connections}
        selected = select_image_topics(bag, types, topics)
        lo = reader.start_time + round((start_s or 0.0) * NS_PER_S)
        hi = None if end_s is None else reader.start_time + round(end_s * NS_PER_S)
        infos = {camera_info_topic(t) for t in selected}
        infos = {t for t in infos if types.get(t) == CAMERA_INFO_TYPE}
        tf_topics = [t for t in TF_TOPICS if types.get(t) == TF_TYPE]
        span_s = (reader.end_time - reader.start_time) / NS_PER_S
        tf = TfBuffer(span_s + 60.0) if tf_topics else None
        decoded, calibrations = [], {t: [] for t in infos}
        seen = dict.fromkeys(selected, 0)
        for topic, typ, t_ns, raw in iter_messages(
                reader, [*selected, *infos, *tf_topics], bag):
            if topic in seen:
                if t_ns < lo or (hi is not None and t_ns >= hi):
                    continue
                seen[topic] += 1
                if (seen[topic] - 1) % stride == 0:  # decoded now: raw bytes are not kept
                    decoded.append(_decode(reader, bag, topic, typ, t_ns, raw, max_side))
                continue
            msg = _deserialize(reader, raw, typ, bag, topic, t_ns)
            if topic in infos:
                calibrations[topic].append((_stamp_ns(msg, t_ns), msg))
            else:
                _add_tf(tf, msg, topic == '/tf_static')
        images = [_with_calibration(bag, item, calibrations) for item in decoded]
        start_ns, end_ns = int(reader.start_time), int(reader.end_time)
    finally:
        reader.close()
    if not images:
        window = '' if start_s is None and end_s is None else \
            f' between {start_s or 0.0:g} s and {"the end" if end_s is None else f"{end_s:g} s"}'
        raise BagError(f'{bag}: no images on {", ".join(selected)}{window} '
                       f'(the bag spans {(end_ns - start_ns) / NS_PER_S:.3g} s)')
    order = {t: i for i, t in enumerate(selected)}
    images.sort(key=lambda im: (im.stamp_ns, order[im.topic]))
    return BagContents(bag, images, tuple(selected), tf, start_ns, end_ns)


def _deserialize(reader, raw: bytes, typ: str, bag: Path, topic: str, t_ns: int):
    try:
        return reader.deserialize(raw, typ)
    except Exception as exc:  # noqa: B902 - rosbags raises its own types for bad CDR
        raise BagError(f'{bag}: topic {topic} at {t_ns / NS_PER_S:.3f} s: cannot decode '
                       f'{typ} ({_first_line(exc)})') from None


def _nearest(calibrations: List[Tuple[int, object]], stamp_ns: int):
    if not calibrations:
        return None
    return min(calibrations, key=lambda item: abs(item[0] - stamp_ns))[1]


def _decode(reader, bag: Path, topic: str, typ: str, t_ns: int, raw: bytes,
            max_side: int) -> BagImage:
    """Return the image of one message (no calibration yet); :class:`BagError` naming it."""
    msg = _deserialize(reader, raw, typ, bag, topic, t_ns)
    stamp = _stamp_ns(msg, t_ns)
    try:
        rgb = image_to_rgb(msg, max_side) if typ == IMAGE_TYPE else \
            compressed_to_rgb(msg, max_side)
    except ConversionError as exc:
        raise BagError(f'{bag}: topic {topic} at stamp {stamp / NS_PER_S:.3f} s: {exc}') \
            from None
    return BagImage(topic, stamp, str(msg.header.frame_id), rgb)


def _with_calibration(bag: Path, image: BagImage, calibrations) -> BagImage:
    """Return ``image`` with the model of the camera_info nearest to its stamp (if any)."""
    info_topic = camera_info_topic(image.topic)
    info = _nearest(calibrations.get(info_topic, []), image.stamp_ns)
    if info is None:
        return image
    size = (image.image.shape[1], image.image.shape[0])
    try:
        model = _model_for_image(_camera_model(info), image.topic, size)
    except CameraModelError as exc:
        raise BagError(f'{bag}: topic {image.topic} at stamp {image.stamp_ns / NS_PER_S:.3f} '
                       f's: {info_topic}: {exc}') from None
    return replace(image, camera_model=model)
