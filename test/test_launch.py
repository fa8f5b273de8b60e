# Copyright 2026 The AetherScan ROS Authors
# SPDX-License-Identifier: Apache-2.0
"""
launch/aetherscan.launch.py: its arguments, the processes it starts, the RViz config it writes.

Three levels. The argument checks (:mod:`aetherscan_ros.node.launch_args`) and the RViz
template (:mod:`aetherscan_ros.node.rviz_config`) are plain functions. The launch file itself
runs against a small stand-in for the ``launch``/``launch_ros`` classes it uses (they record
what would be started), so the order "check everything, then start" is tested everywhere. Where
the real ``launch`` library is installed (a sourced ROS 2), :func:`test_real_launch_runs_the_node`
runs the file with ``LaunchService`` as ``ros2 launch`` does, in a child process started outside
the repository (the repo's own ``launch/`` folder is not the library), waits for the node's
``~/events``, sends SIGINT and expects a clean exit; without the library (the pip wheel set has
none) only that test is skipped, with the reason.
"""

import importlib.util
import os
from pathlib import Path
import signal
import subprocess
import sys
import types

import pytest
import yaml

from aetherscan_ros.node import launch_args, params, rviz_config
from aetherscan_ros.node.launch_args import check_arguments, LaunchArgumentError

REPO = Path(__file__).resolve().parents[1]
YAML_PATH = REPO / 'config' / 'aetherscan.yaml'
RVIZ_PATH = REPO / 'config' / 'aetherscan.rviz'
LAUNCH_PATH = REPO / 'launch' / 'aetherscan.launch.py'
LAUNCH_ARGS = {'params_file', 'image_topics', 'backend', 'model', 'namespace', 'use_rviz',
               'large_data_profile', 'hugepage_malloc', 'use_sim_time', 'log_level'}
NODE_TOPICS = ('cloud', 'points', 'cameras', 'camera_poses', 'map', 'path')


def _load_launch_module():
    spec = importlib.util.spec_from_file_location('aetherscan_launch', LAUNCH_PATH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# ---------------------------------------------------------------- arguments (no launch library)

@pytest.mark.parametrize('name', ['use_rviz', 'large_data_profile', 'hugepage_malloc',
                                  'use_sim_time'])
@pytest.mark.parametrize('text', ['flase', 'yes', 'on', 'ture', '2'])
def test_boolean_arguments_are_strict(name, text):
    with pytest.raises(LaunchArgumentError) as info:
        check_arguments({name: text}, str(YAML_PATH))
    assert f'{name}: {text!r} is not a boolean' in str(info.value)


@pytest.mark.parametrize('text, value', [('true', True), ('TRUE', True), ('1', True),
                                         ('False', False), ('false', False), ('0', False)])
def test_boolean_arguments_accept_true_false_1_0(text, value):
    settings = check_arguments({'use_rviz': text, 'hugepage_malloc': text,
                                'large_data_profile': text, 'use_sim_time': text},
                               str(YAML_PATH))
    assert (settings.use_rviz, settings.hugepage_malloc, settings.large_data_profile,
            settings.use_sim_time) == (value,) * 4


def test_every_bad_argument_is_named_in_one_error(tmp_path):
    missing = tmp_path / 'typo.yaml'
    with pytest.raises(LaunchArgumentError) as info:
        check_arguments({'params_file': str(missing), 'use_rviz': 'ture', 'backend': 'colmap',
                         'namespace': '9robot', 'log_level': 'loud',
                         'image_topics': '/a/image raw'}, str(YAML_PATH))
    text = str(info.value)
    for part in (f'params_file: {missing} does not exist', "use_rviz: 'ture'",
                 "backend: 'colmap'", "namespace: '9robot'", "log_level: 'loud'",
                 "image_topics: '/a/image raw'", 'nothing started'):
        assert part in text


def test_params_file_must_be_a_parameter_yaml(tmp_path):
    bad = tmp_path / 'bad.yaml'
    bad.write_text('/**: {ros__parameters: [unclosed\n')
    with pytest.raises(LaunchArgumentError, match=f'params_file: {bad} is not readable YAML'):
        check_arguments({'params_file': str(bad)})
    listed = tmp_path / 'list.yaml'
    listed.write_text('- 1\n')
    with pytest.raises(LaunchArgumentError, match='is not a parameter file'):
        check_arguments({'params_file': str(listed)})


def test_defaults_and_overrides():
    settings = check_arguments({}, str(YAML_PATH))
    assert settings.params_file == str(YAML_PATH)
    assert settings.parameter_overrides() == {}
    assert settings.use_sim_time is None and settings.hugepage_malloc and not settings.use_rviz
    assert settings.ros_arguments() == ['--log-level', 'info']
    settings = check_arguments({'image_topics': '/a, /b', 'backend': 'classical',
                                'use_sim_time': 'true', 'log_level': 'aetherscan_node:=debug'},
                               str(YAML_PATH))
    assert settings.parameter_overrides() == {
        'image_topics': ['/a', '/b'], 'backend': 'classical', 'use_sim_time': True}
    assert settings.ros_arguments() == ['--log-level', 'aetherscan_node:=debug']
    with pytest.raises(KeyError, match='use_rvis'):
        check_arguments({'use_rvis': 'true'})


def test_checks_agree_with_the_node():
    """The launch checks say what the node would say (same choices, same topic rule)."""
    assert launch_args.BACKENDS == params.BACKEND_CHOICES
    assert launch_args.check_topic is params.check_topic  # one rule: ros/names.py
    for name in ('/a/b', 'a', '~/x', '/{ns}/x'):
        assert launch_args.check_topic(name, 't') is None, name
    for name in ('/a//b', '/a/', '/1a', 'a b', ''):
        assert launch_args.check_topic(name, 't') is not None, name
    for ns in ('', '/', 'robot1', '/robot1', '/a/b_2', 'a/b'):
        assert launch_args.check_namespace(ns) is None, ns
    for ns in ('/a//b', '1a', 'a-b', '/a/~', 'a b'):
        assert launch_args.check_namespace(ns) is not None, ns


def test_node_parameters_from_a_params_file():
    doc = {'/**': {'ros__parameters': {'image_topics': ['/all'], 'world_frame': 'w'}},
           'robot1': {'aetherscan_node': {'ros__parameters': {'image_topics': ['cam/image']}}},
           '/other/aetherscan_node': {'ros__parameters': {'image_topics': ['/no']}}}
    assert launch_args.node_parameters(doc, '/robot1') == {
        'image_topics': ['cam/image'], 'world_frame': 'w'}
    assert launch_args.node_parameters(doc, '')['image_topics'] == ['/all']
    assert launch_args.node_namespace('outer', 'robot1') == '/outer/robot1'
    assert launch_args.node_namespace('outer', '/robot1') == '/robot1'
    assert launch_args.node_namespace('', '') == '/'
    assert launch_args.resolve_topic('cam/image', '/robot1') == '/robot1/cam/image'
    assert launch_args.resolve_topic('~/image', '/') == '/aetherscan_node/image'
    assert launch_args.resolve_topic('/cam0/image_raw', '/robot1') == '/cam0/image_raw'


# ---------------------------------------------------------------- RViz config

def _topics(text):
    manager = yaml.safe_load(text)['Visualization Manager']
    return manager, {d['Name']: d['Topic'] for d in manager['Displays'] if 'Topic' in d}


def test_rviz_template_shows_the_node_outputs_reliably():
    manager, topics = _topics(RVIZ_PATH.read_text())
    assert manager['Global Options']['Fixed Frame'] == params.SPECS['world_frame'].default
    values = {t['Value'] for t in topics.values()}
    assert {f'/aetherscan_node/{t}' for t in NODE_TOPICS} | {'/camera/image_raw'} <= values
    assert 'rviz_default_plugins/TF' in {d['Class'] for d in manager['Displays']}
    assert {t['Reliability Policy'] for t in topics.values()} == {'Reliable'}, \
        'Fast DDS drops MB-sized images to best-effort readers'
    cloud = [t for t in topics.values() if t['Value'] == '/aetherscan_node/cloud'][0]
    assert cloud['Durability Policy'] == 'Transient Local'


def test_rviz_config_for_a_namespace_and_camera():
    settings = check_arguments({'namespace': 'robot1', 'image_topics': '/cam0/image_raw'},
                               str(YAML_PATH))
    text = _load_launch_module().rviz_config_text(settings)
    manager, topics = _topics(text)
    values = {t['Value'] for t in topics.values()}
    assert {f'/robot1/aetherscan_node/{t}' for t in NODE_TOPICS} | {'/cam0/image_raw'} == values
    assert {t['Reliability Policy'] for t in topics.values()} == {'Reliable'}
    assert manager['Global Options']['Fixed Frame'] == 'aetherscan_world'
    template = yaml.safe_load(RVIZ_PATH.read_text())
    assert yaml.safe_load(text).keys() == template.keys()
    assert len(manager['Displays']) == len(template['Visualization Manager']['Displays'])


def test_rviz_config_takes_camera_and_frame_from_the_params_file(tmp_path):
    path = tmp_path / 'p.yaml'
    path.write_text(yaml.safe_dump({
        '/**/aetherscan_node': {'ros__parameters': {
            'image_topics': ['front/image_raw', '/rear/image_raw'], 'world_frame': 'scan'}},
        '/robot1/aetherscan_node': {'ros__parameters': {'image_topics': ['/not/pushed']}}}))
    settings = check_arguments({'namespace': 'robot1', 'params_file': str(path)})
    module = _load_launch_module()
    _, topics = _topics(module.rviz_config_text(settings))
    assert '/not/pushed' in {t['Value'] for t in topics.values()}
    manager, topics = _topics(module.rviz_config_text(settings, 'fleet'))
    values = {t['Value'] for t in topics.values()}
    # PushRosNamespace('fleet') around the include: the node is /fleet/robot1/aetherscan_node
    assert '/fleet/robot1/aetherscan_node/cloud' in values
    assert '/fleet/robot1/front/image_raw' in values
    assert manager['Global Options']['Fixed Frame'] == 'scan'


def test_rviz_fixed_frame_is_the_anchor_frame_when_set(tmp_path):
    path = tmp_path / 'p.yaml'
    path.write_text(yaml.safe_dump({'/**/aetherscan_node': {'ros__parameters': {
        'world_frame': 'scan', 'fixed_frame': 'odom'}}}))
    settings = check_arguments({'params_file': str(path)})
    manager, _ = _topics(_load_launch_module().rviz_config_text(settings))
    assert manager['Global Options']['Fixed Frame'] == 'odom'


def test_rviz_write_makes_a_new_file(tmp_path):
    first = rviz_config.write('a: 1\n', str(tmp_path))
    second = rviz_config.write('a: 2\n', str(tmp_path))
    assert first != second and Path(first).read_text() == 'a: 1\n'
    assert Path(first).name.startswith('aetherscan_') and first.endswith('.rviz')


# ---------------------------------------------------------------- launch file, stand-in library

class _Recorder:
    """Stand-ins for the launch classes the launch file uses; ``started`` = Node actions made."""

    def __init__(self):
        self.started = []
        recorder = self

        class Action:
            def __init__(self, *args, **kwargs):
                self.args, self.kwargs = args, kwargs

        class Node(Action):
            def __init__(self, **kwargs):
                super().__init__(**kwargs)
                recorder.started.append(kwargs)

        class LaunchConfiguration:
            def __init__(self, name):
                self.name = name

            def perform(self, context):
                return context.launch_configurations[self.name]

        self.Action, self.Node = Action, Node
        self.modules = {
            'launch': {'LaunchDescription': lambda entities: types.SimpleNamespace(
                entities=list(entities))},
            'launch.actions': {'DeclareLaunchArgument': type('DeclareLaunchArgument', (Action,),
                                                             {}),
                               'OpaqueFunction': type('OpaqueFunction', (Action,), {}),
                               'RegisterEventHandler': type('RegisterEventHandler', (Action,),
                                                            {})},
            'launch.conditions': {'IfCondition': Action},
            'launch.event_handlers': {'OnShutdown': type('OnShutdown', (Action,), {})},
            'launch.substitutions': {'LaunchConfiguration': LaunchConfiguration},
            'launch_ros': {},
            'launch_ros.actions': {'Node': Node},
        }

    def install(self, monkeypatch):
        for name, attrs in self.modules.items():
            module = types.ModuleType(name)
            module.__dict__.update(attrs)
            monkeypatch.setitem(sys.modules, name, module)

    def launch(self, module, **given):
        """Do what LaunchService does with the description: declare, then run the functions."""
        description = module.generate_launch_description()
        made_by_description = list(self.started)
        context = types.SimpleNamespace(launch_configurations={})
        actions = []
        for entity in description.entities:
            kind = type(entity).__name__
            if kind == 'DeclareLaunchArgument':
                name = entity.args[0]
                context.launch_configurations[name] = given.get(
                    name, entity.kwargs['default_value'])
            elif kind == 'OpaqueFunction':
                actions += entity.kwargs['function'](context)
        return description, made_by_description, actions


@pytest.fixture
def recorder(monkeypatch):
    """Install the stand-in launch library for one test; return the recorder."""
    rec = _Recorder()
    rec.install(monkeypatch)
    return rec


def test_launch_declares_the_arguments(recorder):
    description, made, _ = recorder.launch(_load_launch_module())
    declared = {e.args[0]: e.kwargs['default_value'] for e in description.entities
                if type(e).__name__ == 'DeclareLaunchArgument'}
    assert set(declared) == LAUNCH_ARGS
    assert declared['params_file'] == str(YAML_PATH)


@pytest.mark.parametrize('bad', [{'use_rviz': 'ture'}, {'hugepage_malloc': 'flase'},
                                 {'params_file': '/nonexistent/aetherscan.yaml'},
                                 {'log_level': 'verbose'}])
def test_launch_starts_nothing_when_an_argument_is_bad(recorder, bad):
    """Every argument is checked before any process is made (no orphaned node)."""
    module = _load_launch_module()
    description = module.generate_launch_description()
    assert recorder.started == [], 'the description itself makes processes (unchecked)'
    kinds = [type(e).__name__ for e in description.entities]
    assert kinds.count('OpaqueFunction') == 1 and \
        set(kinds) == {'DeclareLaunchArgument', 'OpaqueFunction'}
    name = next(iter(bad))
    with pytest.raises(LaunchArgumentError, match=f'{name}: .*{bad[name]}'):
        recorder.launch(module, **bad)
    assert recorder.started == []


def test_launch_node_arguments(recorder, monkeypatch):
    monkeypatch.setenv('GLIBC_TUNABLES', 'glibc.malloc.arena_max=2')
    _, made, _ = recorder.launch(
        _load_launch_module(), namespace='robot1', image_topics='/cam0/image_raw,/cam1/image_raw',
        use_sim_time='True', log_level='debug', large_data_profile='1')
    assert made == [] and len(recorder.started) == 1
    node = recorder.started[0]
    assert (node['package'], node['executable'], node['name'], node['namespace']) == (
        'aetherscan_ros', 'aetherscan_node', 'aetherscan_node', 'robot1')
    assert node['parameters'] == [str(YAML_PATH), {
        'image_topics': ['/cam0/image_raw', '/cam1/image_raw'], 'use_sim_time': True}]
    assert node['arguments'] == ['--ros-args', '--log-level', 'debug']
    env = node['additional_env']
    assert env['GLIBC_TUNABLES'] == 'glibc.malloc.arena_max=2:glibc.malloc.hugetlb=1'
    assert Path(env['FASTRTPS_DEFAULT_PROFILES_FILE']).is_file()
    assert env['FASTDDS_DEFAULT_PROFILES_FILE'] == env['FASTRTPS_DEFAULT_PROFILES_FILE']
    recorder.launch(_load_launch_module(), hugepage_malloc='false')
    assert recorder.started[-1]['additional_env'] == {}


def test_launch_rviz_gets_a_config_for_this_node(recorder):
    _, _, actions = recorder.launch(_load_launch_module(), namespace='robot1',
                                    image_topics='/cam0/image_raw', use_rviz='true')
    rviz = recorder.started[-1]
    assert (rviz['package'], rviz['executable']) == ('rviz2', 'rviz2')
    flag, path = rviz['arguments']
    assert flag == '-d' and Path(path).is_file()
    _, topics = _topics(Path(path).read_text())
    assert '/robot1/aetherscan_node/cloud' in {t['Value'] for t in topics.values()}
    assert '/cam0/image_raw' in {t['Value'] for t in topics.values()}
    cleanup = [a for a in actions if type(a).__name__ == 'RegisterEventHandler']
    assert len(cleanup) == 1
    cleanup[0].args[0].kwargs['on_shutdown'](None, None)
    assert not Path(path).exists(), 'the temporary RViz config is removed at shutdown'


def test_readme_documents_every_launch_argument():
    text = (REPO / 'README.md').read_text()
    section = text[text.index('## The node'):text.index('## The `aetherscan` command line')]
    missing = [name for name in sorted(LAUNCH_ARGS) if f'`{name}`' not in section]
    assert not missing, f'README "The node" does not document launch arguments {missing}'


# ---------------------------------------------------------------- the real launch library

_PROBE = ('import launch, launch_ros.actions, sys; '
          'sys.exit(0 if launch.__file__ and hasattr(launch, "LaunchService") else 3)')
_RUN_LAUNCH = """
import sys
from launch import LaunchDescription, LaunchService
from launch.actions import IncludeLaunchDescription
from launch.launch_description_sources import PythonLaunchDescriptionSource
path, *pairs = sys.argv[1:]
service = LaunchService(argv=pairs)
service.include_launch_description(LaunchDescription([IncludeLaunchDescription(
    PythonLaunchDescriptionSource(path),
    launch_arguments=[tuple(p.split(':=', 1)) for p in pairs])]))
sys.exit(service.run())
"""


def _outside_env(prefix=None):
    """Environment for a child started outside the repo: the repo only via PYTHONPATH."""
    env = dict(os.environ)
    env['PYTHONPATH'] = os.pathsep.join(p for p in (str(REPO), env.get('PYTHONPATH')) if p)
    if prefix:
        env['AMENT_PREFIX_PATH'] = os.pathsep.join(
            p for p in (str(prefix), env.get('AMENT_PREFIX_PATH')) if p)
    return env


def _real_launch_or_skip(tmp_path):
    proc = subprocess.run([sys.executable, '-c', _PROBE], cwd=tmp_path, env=_outside_env(),
                          capture_output=True, text=True, timeout=120)
    if proc.returncode:
        last = (proc.stderr.strip().splitlines() or ['launch is the repo folder'])[-1]
        pytest.skip('the ROS 2 launch/launch_ros libraries are not installed here (no wheels '
                    f'exist; {last}): run in a sourced ROS 2 to launch the node for real')


def _package_prefix(tmp_path):
    """Make an ament prefix in which launch_ros finds aetherscan_node (this tree's node)."""
    prefix = tmp_path / 'prefix'
    marker = prefix / 'share' / 'ament_index' / 'resource_index' / 'packages' / 'aetherscan_ros'
    marker.parent.mkdir(parents=True)
    marker.write_text('')
    exe = prefix / 'lib' / 'aetherscan_ros' / 'aetherscan_node'
    exe.parent.mkdir(parents=True)
    exe.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m aetherscan_ros.node "$@"\n')
    exe.chmod(0o755)
    return prefix


def _run_launch(tmp_path, *args):
    log = tmp_path / 'launch.log'
    script = tmp_path / 'run_launch.py'
    script.write_text(_RUN_LAUNCH)
    proc = subprocess.Popen(
        [sys.executable, str(script), str(LAUNCH_PATH), *args], cwd=tmp_path,
        env=_outside_env(_package_prefix(tmp_path)), stdout=open(log, 'w'),
        stderr=subprocess.STDOUT)
    return proc, log


@pytest.mark.ros
def test_real_launch_rejects_a_bad_argument_and_starts_nothing(tmp_path):
    _real_launch_or_skip(tmp_path)
    proc, log = _run_launch(tmp_path, 'use_rviz:=ture')
    try:
        code = proc.wait(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    text = log.read_text()
    assert code != 0 and "use_rviz: 'ture' is not a boolean" in text, text
    assert 'process started' not in text, text


@pytest.mark.ros
def test_real_launch_runs_the_node(request, tmp_path):
    _real_launch_or_skip(tmp_path)
    request.getfixturevalue('ros')
    from aetherscan_ros.demo.run_demo import NodeMonitor
    params_file = tmp_path / 'params.yaml'
    doc = yaml.safe_load(YAML_PATH.read_text())
    doc['/**']['ros__parameters'].update(backend='classical', output_dir=str(tmp_path / 'out'))
    params_file.write_text(yaml.safe_dump(doc))
    monitor = NodeMonitor('/launch_test/aetherscan_node')
    proc, log = _run_launch(tmp_path, f'params_file:={params_file}', 'namespace:=launch_test',
                            'image_topics:=/a/image_raw,/b/image_raw', 'use_sim_time:=false',
                            'log_level:=debug', 'hugepage_malloc:=true')
    try:
        selected = monitor.wait_event('backend_selected', 120.0)
        assert selected is not None, log.read_text()[-3000:]
        assert proc.poll() is None, log.read_text()[-3000:]
        proc.send_signal(signal.SIGINT)
        code = proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
        monitor.close()
    text = log.read_text()
    assert code == 0, text[-3000:]
    assert 'process has finished cleanly' in text and 'process has died' not in text, text
