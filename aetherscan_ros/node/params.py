# Copyright 2026 The AetherScan ROS Authors
# SPDX-License-Identifier: Apache-2.0
"""
The one table of ``aetherscan_node`` parameters, their descriptors and validation.

The table :data:`PARAMS` is the single source of truth: the node declares every entry with a
``ParameterDescriptor`` built from it (description, integer/floating-point range, ``read_only``
where a restart is needed), ``config/aetherscan.yaml`` lists every entry with a comment, and
:func:`validate` performs the checks a descriptor cannot express (enumerations, topic and frame
names, cross-field rules). Nothing here needs ``rclpy.init()``.
"""

from dataclasses import dataclass, fields
import os
from typing import Dict, Mapping, Optional, Sequence, Tuple

from aetherscan_ros.files.exports import check_exports
from aetherscan_ros.node.param_spec import descriptor, ParamSpec  # noqa: F401 - part of the API
from aetherscan_ros.ros.names import check_frame, check_topic

BACKEND_CHOICES = ('auto', 'mapanything', 'fast3r', 'classical')
DEVICE_CHOICES = ('auto', 'cuda', 'cpu')
TRANSPORT_CHOICES = ('raw', 'compressed')
IMAGE_QOS_CHOICES = ('auto', 'sensor_data', 'reliable')
BUSY_POLICY_CHOICES = ('buffer', 'drop')
CAPTURE_MODE_CHOICES = ('series', 'sets')
MODE_CHOICES = ('snapshot', 'mapping')


PARAMS: Tuple[ParamSpec, ...] = (
    # Inputs
    ParamSpec('image_topics', 'string_array', ['/camera/image_raw'],
              'Image topics, one per camera (for compressed transport the node subscribes '
              'to <topic>/compressed).', read_only=True),
    ParamSpec('image_transport', 'string', 'raw',
              'raw: sensor_msgs/Image; compressed: sensor_msgs/CompressedImage (jpeg/png) on '
              '<topic>/compressed.', choices=TRANSPORT_CHOICES, read_only=True),
    ParamSpec('image_qos', 'string', 'auto',
              'auto: match the reliability of the publishers found on each image topic '
              '(re-checked when publishers appear); sensor_data: best effort; reliable.',
              choices=IMAGE_QOS_CHOICES, read_only=True),
    ParamSpec('camera_info_topics', 'string_array', [],
              'CameraInfo topic per image topic; empty = <image topic namespace>/camera_info.',
              read_only=True),
    ParamSpec('use_camera_info', 'bool', True,
              'Pass the camera_info intrinsics K to the backend (otherwise it estimates them).'),
    ParamSpec('fixed_frame', 'string', '',
              "TF frame to anchor reconstructions in (e.g. odom or map): each image's optical "
              'frame (header.frame_id) is looked up in it at the image stamp, and a robust '
              'similarity puts the cloud there in metres. Empty = off.', read_only=True),
    ParamSpec('tf_timeout', 'double', 0.5,
              'Seconds to wait for TF of one image (fixed_frame set).', bounds=(0.0, 10.0)),
    ParamSpec('anchor_min_baseline', 'double', 0.05,
              'Least spread (m) of the TF camera centres for metric anchoring.',
              bounds=(0.0, 1000.0)),
    ParamSpec('anchor_max_residual', 'double', 0.05,
              'Largest RMS residual (m) of the camera centres accepted for anchoring.',
              bounds=(0.0, 1000.0)),
    ParamSpec('undistort', 'bool', True,
              'Remove the lens distortion of raw images (camera_info D: plumb_bob, '
              'rational_polynomial, equidistant) before reconstruction; image_rect* topics are '
              'taken as rectified (P).'),
    ParamSpec('max_image_side', 'int', 4096,
              'Images whose width or height exceeds this many pixels are rejected.',
              bounds=(16, 16384)),
    # Backend
    ParamSpec('backend', 'string', 'auto',
              'auto: the first whose weights are on this machine: MapAnything (metric, takes '
              'camera_info K and the TF poses of fixed_frame as inputs), Fast3R, else '
              'classical; mapanything; fast3r; classical.', choices=BACKEND_CHOICES,
              read_only=True),
    ParamSpec('model', 'string', '',
              'MapAnything or Fast3R checkpoint: a local directory (config.json + '
              'model.safetensors) or a Hugging Face repo id already in the local cache; empty '
              '= the default repo id (facebook/map-anything-apache, '
              'jedyang97/Fast3R_ViT_Large_512).',
              read_only=True),
    ParamSpec('device', 'string', 'auto',
              'auto: CUDA (bf16/fp16) when available, else CPU (fp32); cuda; cpu.',
              choices=DEVICE_CHOICES, read_only=True),
    # Buffer and triggers
    ParamSpec('min_views', 'int', 6,
              'Keyframes needed before an automatic or periodic reconstruction.',
              bounds=(2, 64)),
    ParamSpec('max_views', 'int', 10,
              'Buffer capacity in keyframes (the oldest is evicted when full) and the most '
              'views one reconstruction uses.', bounds=(2, 64)),
    ParamSpec('keyframe_min_interval', 'double', 0.5,
              'Seconds between two keyframes of one camera (by header stamp).',
              bounds=(0.0, 3600.0)),
    ParamSpec('keyframe_min_change', 'double', 0.02,
              'Mean absolute change of a 32x24 grey thumbnail (0..1) against the last '
              'keyframe of the same camera needed for a new keyframe.', bounds=(0.0, 1.0)),
    ParamSpec('busy_policy', 'string', 'buffer',
              'Frames that arrive during a reconstruction: buffer = keep keyframes for the '
              'next one (oldest evicted when full); drop = discard and count them.',
              choices=BUSY_POLICY_CHOICES),
    ParamSpec('capture_mode', 'string', 'series',
              'series: a time series of keyframes (a moving camera, a static scene); sets: a '
              'fixed rig watching a changing scene: frames of all cameras whose stamps agree '
              'within sync_tolerance form one set and a reconstruction takes the newest '
              'complete set(s) (max_views // cameras sets, at least one); min_views counts '
              'frames of complete sets.', choices=CAPTURE_MODE_CHOICES),
    ParamSpec('sync_tolerance', 'double', 0.01,
              'Seconds within which header stamps belong to one set (capture_mode sets) and a '
              'camera_info stamp matches an image stamp.', bounds=(0.0, 10.0)),
    ParamSpec('enabled', 'bool', True,
              'Take images and start reconstructions; false = paused (~/pause, ~/resume): '
              'images are counted and dropped, buffered keyframes are kept, a running '
              'reconstruction finishes.'),
    ParamSpec('auto_trigger', 'bool', True,
              'Reconstruct as soon as min_views keyframes are buffered.'),
    ParamSpec('trigger_period', 'double', 0.0,
              'Seconds between periodic reconstructions when min_views keyframes are '
              'buffered; 0 disables the timer.', bounds=(0.0, 86400.0)),
    # Continuous mapping (core/mapping.py)
    ParamSpec('mode', 'string', 'snapshot', 'snapshot: each reconstruction replaces the last; '
              'mapping: overlapping windows fused into one map (~/map, ~/path).',
              choices=MODE_CHOICES, read_only=True),
    ParamSpec('window_size', 'int', 8, 'Keyframes per mapping window.', bounds=(2, 64),
              read_only=True),
    ParamSpec('window_overlap', 'int', 2, 'Keyframes a mapping window shares with the one '
              'before (registration), < window_size.', bounds=(1, 63), read_only=True),
    ParamSpec('map_voxel_size', 'double', 0.0, 'Voxel edge of the map (metres with fixed_frame); '
              "0 = 1/200 of the first window's median depth.", bounds=(0.0, 100.0),
              read_only=True),
    ParamSpec('map_max_points', 'int', 2000000, 'Most voxels the map keeps (the farthest from '
              'the camera go first); 0 = no limit.', bounds=(0, 100000000), read_only=True),
    ParamSpec('map_radius', 'double', 0.0, 'Map voxels farther than this from the newest camera '
              'are dropped; 0 = keep all.', bounds=(0.0, 1.0e6), read_only=True),
    # Outputs
    ParamSpec('world_frame', 'string', 'aetherscan_world',
              'frame_id of the clouds and parent of the camera frames: a REP-103 body frame '
              '(x forward, z up) at the first camera of each reconstruction (world_upright), '
              'placed in fixed_frame in metres when anchored.'),
    ParamSpec('world_upright', 'bool', True,
              'world_frame upright (REP-103 body axes at view 0); false = the optical frame of '
              'view 0 (x right, y down, z forward).', read_only=True),
    ParamSpec('frame_prefix', 'string', '',
              'Prefix of the per-view TF frames <frame_prefix>camera_<i>_optical.'),
    ParamSpec('chunk_points', 'int', 50000,
              'Points per ~/points chunk.', bounds=(100, 10000000)),
    ParamSpec('voxel_size', 'double', 0.0,
              'Voxel edge (world units) for downsampling ~/cloud; 0 = full resolution.',
              bounds=(0.0, 100.0)),
    ParamSpec('cloud_max_points', 'int', 0,
              'Point budget of ~/cloud: above it the cloud is voxel-downsampled with a growing '
              'voxel until at most this many points remain (RViz draws 1M+ points slowly); '
              '0 = no budget. Applied after voxel_size; ~/points always streams every point.',
              bounds=(0, 100000000)),
    ParamSpec('frustum_scale', 'double', 0.0,
              'Depth of the camera frusta in ~/cameras (world units); 0 = 10% of the cloud '
              'extent.', bounds=(0.0, 1000.0)),
    ParamSpec('output_dir', 'string', '~/.ros/aetherscan',
              'Directory where ~/save writes cloud.ply + poses.json (nothing is written '
              'outside it; read-only, so a remote parameter call cannot redirect the writes).',
              read_only=True),
    ParamSpec('save_exports', 'string_array', ['colmap', 'nerfstudio'], 'Also written by '
              '~/save: colmap (colmap/), nerfstudio (transforms.json), depth (depth/*.tiff).'),
    ParamSpec('depth_output', 'string', 'always', '~/depth + ~/depth/camera_info per view: '
              'always (metres when anchored, else reconstruction units); auto = only when '
              'metric (anchored); off.', choices=('auto', 'always', 'off')),
    ParamSpec('diagnostics_period', 'double', 1.0,
              'Seconds between /diagnostics messages.', bounds=(0.1, 60.0), read_only=True),
    ParamSpec('no_frames_warning', 'double', 10.0,
              'Warn (throttled) when no frame arrived for this many seconds; 0 disables.',
              bounds=(0.0, 3600.0)),
)

SPECS: Dict[str, ParamSpec] = {spec.name: spec for spec in PARAMS}

# Parameters that existed once: setting one stops the node with what to do instead.
REMOVED = {
    'parent_frame': 'it glued the unscaled reconstruction into the metric TF tree; set '
                    'fixed_frame (e.g. odom, map, or a rig base with static TF to the cameras) '
                    'and the node anchors world_frame there in metres',
}


@dataclass(frozen=True)
class NodeConfig:
    """The node's parameter values, typed (see :data:`PARAMS` for meanings)."""

    image_topics: Tuple[str, ...]
    image_transport: str
    image_qos: str
    camera_info_topics: Tuple[str, ...]
    use_camera_info: bool
    fixed_frame: str
    tf_timeout: float
    anchor_min_baseline: float
    anchor_max_residual: float
    undistort: bool
    max_image_side: int
    backend: str
    model: str
    device: str
    min_views: int
    max_views: int
    keyframe_min_interval: float
    keyframe_min_change: float
    busy_policy: str
    capture_mode: str
    sync_tolerance: float
    enabled: bool
    auto_trigger: bool
    trigger_period: float
    mode: str
    window_size: int
    window_overlap: int
    map_voxel_size: float
    map_max_points: int
    map_radius: float
    world_frame: str
    world_upright: bool
    frame_prefix: str
    chunk_points: int
    voxel_size: float
    cloud_max_points: int
    frustum_scale: float
    output_dir: str
    save_exports: Tuple[str, ...]
    depth_output: str
    diagnostics_period: float
    no_frames_warning: float

    def info_topics(self) -> Tuple[str, ...]:
        """Return the CameraInfo topic of each image topic (explicit or derived)."""
        if self.camera_info_topics:
            return self.camera_info_topics
        return tuple(default_camera_info_topic(t) for t in self.image_topics)

    def subscribed_image_topics(self) -> Tuple[str, ...]:
        """Return the topics actually subscribed (``<topic>/compressed`` for compressed)."""
        if self.image_transport == 'compressed':
            return tuple(t.rstrip('/') + '/compressed' for t in self.image_topics)
        return self.image_topics

    def resolved_output_dir(self) -> str:
        """Return ``output_dir`` with ``~`` and environment variables expanded, absolute."""
        return os.path.abspath(os.path.expandvars(os.path.expanduser(self.output_dir)))


def default_camera_info_topic(image_topic: str) -> str:
    """Return ``<namespace of image_topic>/camera_info`` (the image_transport convention)."""
    head, sep, _ = image_topic.rpartition('/')
    return head + sep + 'camera_info'


def validate(values: Mapping[str, object]) -> Optional[str]:
    """
    Check enumerations, names and cross-field rules; return the reason or ``None`` if valid.

    ``values`` maps parameter names to values (missing keys take the table default). Ranges
    are enforced by rclpy from the descriptors but are checked here too, so a config built
    outside a node gets the same answer.
    """
    merged = {spec.name: values.get(spec.name, spec.default) for spec in PARAMS}
    for spec in PARAMS:
        value = merged[spec.name]
        if spec.choices and value not in spec.choices:
            return (f'{spec.name}: {value!r} is not one of '
                    f'{", ".join(spec.choices)}')
        if spec.bounds is not None and not spec.bounds[0] <= value <= spec.bounds[1]:
            return (f'{spec.name}: {value} is outside [{spec.bounds[0]}, '
                    f'{spec.bounds[1]}]')
    topics = list(merged['image_topics'])
    if not topics:
        return 'image_topics: at least one image topic is needed'
    for topic in topics:
        reason = check_topic(topic, 'image_topics')
        if reason:
            return reason
    if len(set(topics)) != len(topics):
        return 'image_topics: the same topic is listed twice'
    infos = list(merged['camera_info_topics'])
    if infos and len(infos) != len(topics):
        return (f'camera_info_topics: {len(infos)} topics for {len(topics)} image topics '
                '(give one per image topic, or none to derive them)')
    for topic in infos:
        reason = check_topic(topic, 'camera_info_topics')
        if reason:
            return reason
    if merged['min_views'] > merged['max_views']:
        return (f'min_views ({merged["min_views"]}) must not exceed max_views '
                f'({merged["max_views"]})')
    rig = len(topics)
    if merged['capture_mode'] == 'sets' and \
            merged['min_views'] > rig * max(1, merged['max_views'] // rig):
        return (f'min_views ({merged["min_views"]}) is more than the frames of the '
                f'{max(1, merged["max_views"] // rig)} complete set(s) of {rig} camera(s) that '
                f'max_views ({merged["max_views"]}) holds in capture_mode sets')
    for name, allow_empty in (('world_frame', False), ('fixed_frame', True),
                              ('frame_prefix', True)):
        reason = check_frame(merged[name], name, allow_empty)
        if reason:
            return reason
    if merged['fixed_frame'] and merged['fixed_frame'] == merged['world_frame']:
        return 'fixed_frame must differ from world_frame'
    if not str(merged['output_dir']).strip():
        return 'output_dir: empty path'
    if '\0' in str(merged['output_dir']):
        return 'output_dir: the path contains a NUL byte'
    if merged['window_overlap'] >= merged['window_size']:
        return (f'window_overlap ({merged["window_overlap"]}) must be less than window_size '
                f'({merged["window_size"]})')
    if (reason := check_exports(merged['save_exports'])):
        return f'save_exports: {reason}'
    return None


def make_config(values: Mapping[str, object]) -> NodeConfig:
    """Build a :class:`NodeConfig` from parameter values; raise ``ValueError`` with the reason."""
    reason = validate(values)
    if reason:
        raise ValueError(reason)
    kwargs = {}
    for f in fields(NodeConfig):
        value = values.get(f.name, SPECS[f.name].default)
        kind = SPECS[f.name].kind
        if kind == 'string_array':
            value = tuple(str(v) for v in value)
        elif kind == 'double':
            value = float(value)
        elif kind == 'int':
            value = int(value)
        kwargs[f.name] = value
    return NodeConfig(**kwargs)


def declare_all(node) -> NodeConfig:
    """
    Declare every parameter of :data:`PARAMS` on ``node``; return the validated config.

    Empty string-array defaults are declared by type (rclpy cannot infer a type from ``[]``)
    and read back as empty. Raises ``ValueError`` with the reason when the initial values
    (overrides, YAML) break a rule.
    """
    from rclpy.parameter import Parameter
    overrides = getattr(node, '_parameter_overrides', None) or {}
    for name, hint in REMOVED.items():
        if name in overrides:
            raise ValueError(f'{name} was removed: {hint}')
    for spec in PARAMS:
        default = spec.default
        if spec.kind == 'string_array' and not default:
            default = Parameter.Type.STRING_ARRAY
        node.declare_parameter(spec.name, default, descriptor(spec))
    return make_config(current_values(node))


def current_values(node) -> Dict[str, object]:
    """Return ``{name: value}`` for every parameter of the table as declared on ``node``."""
    from rclpy.exceptions import ParameterUninitializedException
    values = {}
    for spec in PARAMS:
        try:
            value = node.get_parameter(spec.name).value
        except ParameterUninitializedException:
            value = None
        values[spec.name] = list(spec.default) if value is None and \
            spec.kind == 'string_array' else value
    return values


def check_change(current: Mapping[str, object], changes: Sequence) -> Tuple[bool, str]:
    """
    Validate a parameter change (``changes``: rclpy ``Parameter`` list) against the table.

    Returns ``(successful, reason)`` for ``SetParametersResult``. Parameters outside the table
    (``qos_overrides.*``, ``use_sim_time``) pass through.
    """
    merged = dict(current)
    for param in changes:
        if param.name in SPECS:
            merged[param.name] = param.value
    reason = validate(merged)
    return (reason is None, reason or '')
