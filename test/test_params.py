# Copyright 2026 The AetherScan ROS Authors
# SPDX-License-Identifier: Apache-2.0
"""The parameter table: descriptors, validation rules and config building (no rclpy.init)."""

import pytest
from rcl_interfaces.msg import ParameterType
from rclpy.parameter import Parameter

from aetherscan_ros.node import params


def test_table_is_complete_and_consistent():
    names = [spec.name for spec in params.PARAMS]
    assert len(names) == len(set(names))
    config_fields = set(params.NodeConfig.__dataclass_fields__)
    assert set(names) == config_fields
    for name in ('image_topics', 'image_transport', 'camera_info_topics', 'backend', 'model',
                 'device', 'min_views', 'max_views', 'auto_trigger', 'world_frame',
                 'frame_prefix', 'chunk_points', 'voxel_size', 'output_dir'):
        assert name in names, f'contract parameter {name} missing'
    for spec in params.PARAMS:
        assert spec.description.strip(), spec.name
        desc = params.descriptor(spec)
        assert desc.description.startswith(spec.description)
        if spec.kind == 'int' and spec.bounds:
            assert desc.integer_range[0].from_value == spec.bounds[0]
            assert desc.integer_range[0].to_value == spec.bounds[1]
        if spec.kind == 'double' and spec.bounds:
            assert desc.floating_point_range[0].to_value == spec.bounds[1]
        if spec.choices:
            assert spec.default in spec.choices and 'one of' in desc.additional_constraints
    assert params.descriptor(params.SPECS['backend']).read_only
    assert not params.descriptor(params.SPECS['min_views']).read_only
    assert params.descriptor(params.SPECS['image_topics']).type == \
        ParameterType.PARAMETER_STRING_ARRAY
    assert params.validate({}) is None  # the defaults are valid


@pytest.mark.parametrize('values, reason', [
    ({'backend': 'magic'}, "backend: 'magic' is not one of auto, mapanything, fast3r, "
     'classical'),
    ({'image_transport': 'theora'}, 'image_transport'),
    ({'device': 'tpu'}, 'device'),
    ({'busy_policy': 'queue'}, 'busy_policy'),
    ({'min_views': 1}, 'min_views: 1 is outside'),
    ({'voxel_size': -1.0}, 'voxel_size'),
    ({'min_views': 12, 'max_views': 10}, 'min_views (12) must not exceed max_views (10)'),
    ({'image_topics': []}, 'at least one image topic'),
    ({'image_topics': ['/a b']}, 'not a valid ROS topic name'),
    ({'image_topics': ['/a', '/a']}, 'listed twice'),
    ({'image_topics': ['/a', '/b'], 'camera_info_topics': ['/a_info']},
     '1 topics for 2 image topics'),
    ({'world_frame': '/map'}, 'not a valid tf2 frame id'),
    ({'world_frame': ''}, 'world_frame: empty frame id'),
    ({'fixed_frame': 'aetherscan_world'}, 'fixed_frame must differ'),
    ({'output_dir': '  '}, 'output_dir: empty path'),
])
def test_validate_rejects_with_reason(values, reason):
    got = params.validate(values)
    assert got is not None and reason in got
    with pytest.raises(ValueError, match='.'):
        params.make_config(values)


def test_make_config_types_and_derived_topics():
    cfg = params.make_config({'image_topics': ['/left/image_raw', 'right/image'],
                              'image_transport': 'compressed', 'min_views': 3,
                              'voxel_size': 1, 'output_dir': '~/scans'})
    assert cfg.image_topics == ('/left/image_raw', 'right/image')
    assert cfg.info_topics() == ('/left/camera_info', 'right/camera_info')
    assert params.default_camera_info_topic('image') == 'camera_info'
    assert cfg.subscribed_image_topics() == ('/left/image_raw/compressed',
                                             'right/image/compressed')
    assert isinstance(cfg.voxel_size, float) and cfg.min_views == 3
    assert cfg.resolved_output_dir().endswith('/scans') and '~' not in cfg.resolved_output_dir()
    explicit = params.make_config({'camera_info_topics': ['/x/info']})
    assert explicit.info_topics() == ('/x/info',)


def test_check_change_merges_and_passes_foreign_parameters():
    current = {spec.name: spec.default for spec in params.PARAMS}
    ok, reason = params.check_change(current, [Parameter('min_views', value=20)])
    assert not ok and 'must not exceed max_views' in reason
    ok, reason = params.check_change(current, [Parameter('min_views', value=20),
                                               Parameter('max_views', value=30)])
    assert ok and reason == ''
    ok, _ = params.check_change(current, [Parameter('use_sim_time', value=True)])
    assert ok


def test_a_removed_parameter_stops_the_node_with_what_to_do():
    import types
    node = types.SimpleNamespace(_parameter_overrides={'parent_frame': object()})
    with pytest.raises(ValueError, match='parent_frame was removed: .* set fixed_frame'):
        params.declare_all(node)
