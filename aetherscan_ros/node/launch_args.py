# Copyright 2026 The AetherScan ROS Authors
# SPDX-License-Identifier: Apache-2.0
"""
The arguments of ``launch/aetherscan.launch.py``, checked before any process starts.

The launch file reads every argument, hands the strings to :func:`check_arguments` and builds
its actions from the returned :class:`LaunchSettings`; a bad value raises
:class:`LaunchArgumentError` naming every bad argument, so launch stops before the node (or
RViz) is started. Nothing here needs the ``launch`` library or rclpy, so it is tested anywhere.
"""

from dataclasses import dataclass
import os
import re
from typing import Dict, List, Mapping, Optional, Tuple

import yaml

from aetherscan_ros.ros.names import check_topic

# name, default, description: the launch arguments, in the order ``ros2 launch -s`` shows them.
ARGUMENTS: Tuple[Tuple[str, str, str], ...] = (
    ('params_file', '', 'YAML file with the aetherscan_node parameters '
     '(default: config/aetherscan.yaml; must exist)'),
    ('image_topics', '', 'Comma-separated image topics (empty: from params_file)'),
    ('backend', '', 'auto, mapanything, fast3r or classical (empty: from params_file)'),
    ('model', '', 'MapAnything or Fast3R checkpoint dir or hub repo id (empty: params_file)'),
    ('namespace', '', 'Namespace of the node'),
    ('use_rviz', 'false', 'true or false: also start rviz2, configured for this node'),
    ('large_data_profile', 'false',
     'true or false: run the node with the Fast DDS large-data profile '
     '(config/fastdds_large_data.xml)'),
    ('hugepage_malloc', 'true',
     'true or false: start the node with GLIBC_TUNABLES=glibc.malloc.hugetlb=1 '
     '(huge pages for large clouds)'),
    ('use_sim_time', '', "true or false: the node's use_sim_time parameter "
     '(empty: from params_file)'),
    ('log_level', 'info', 'debug, info, warn, error or fatal (or <logger>:=<level>): '
     "the node's --log-level"),
)
BACKENDS = ('auto', 'mapanything', 'fast3r', 'classical')  # = params.BACKEND_CHOICES (tested)
LOG_LEVELS = ('debug', 'info', 'warn', 'error', 'fatal')
NODE_NAME = 'aetherscan_node'
_TRUE, _FALSE = ('true', '1'), ('false', '0')
_TOKEN = re.compile(r'[A-Za-z_][A-Za-z0-9_]*$')


class LaunchArgumentError(ValueError):
    """A launch argument has a bad value; the message names every bad argument and value."""


@dataclass(frozen=True)
class LaunchSettings:
    """The launch arguments, parsed and checked (see :data:`ARGUMENTS`)."""

    params_file: str
    image_topics: Tuple[str, ...]
    backend: str
    model: str
    namespace: str
    use_rviz: bool
    large_data_profile: bool
    hugepage_malloc: bool
    use_sim_time: Optional[bool]
    log_level: str

    def parameter_overrides(self) -> Dict[str, object]:
        """Return the node parameters given as arguments (applied after ``params_file``)."""
        out: Dict[str, object] = {}
        if self.image_topics:
            out['image_topics'] = list(self.image_topics)
        if self.backend:
            out['backend'] = self.backend
        if self.model:
            out['model'] = self.model
        if self.use_sim_time is not None:
            out['use_sim_time'] = self.use_sim_time
        return out

    def ros_arguments(self) -> List[str]:
        """Return the node's ``--ros-args`` arguments (the log level)."""
        return ['--log-level', self.log_level] if self.log_level else []


def parse_bool(name: str, text: str, allow_empty: bool = False) -> Optional[bool]:
    """
    Parse a boolean launch argument: ``true``/``false`` or ``1``/``0``, any case.

    Returns ``None`` for an empty value when ``allow_empty``; raises
    :class:`LaunchArgumentError` naming the argument and the value otherwise.
    """
    value = text.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    if allow_empty and not value:
        return None
    return _fail(f'{name}: {text!r} is not a boolean (true or false)')


def check_namespace(namespace: str) -> Optional[str]:
    """Return why ``namespace`` is not a ROS namespace (tokens ``[A-Za-z_][A-Za-z0-9_]*``)."""
    tokens = namespace.strip('/').split('/') if namespace.strip('/') else []
    if '//' in namespace or not all(_TOKEN.match(t) for t in tokens):
        return (f'namespace: {namespace!r} is not a valid ROS namespace (names of letters, '
                'digits and _ separated by /, not starting with a digit)')
    return None


def check_log_level(text: str) -> Optional[str]:
    """Return why ``text`` is not a ``--log-level`` value (``level`` or ``logger:=level``)."""
    level = text.rpartition(':=')[2] if ':=' in text else text
    logger = text.rpartition(':=')[0] if ':=' in text else 'x'
    if level.strip().lower() not in LOG_LEVELS or not logger.strip():
        return (f'log_level: {text!r} is not one of {", ".join(LOG_LEVELS)} '
                '(or <logger>:=<level>)')
    return None


def _fail(message: str):
    raise LaunchArgumentError(message)


def _collect(problems: List[str], check, *args):
    try:
        return check(*args)
    except LaunchArgumentError as exc:
        problems.append(str(exc))
        return None


def load_params_file(path: str) -> dict:
    """Read a ROS 2 parameter YAML file; raise :class:`LaunchArgumentError` naming it."""
    if not os.path.isfile(path):
        _fail(f'params_file: {path} does not exist (or is not a file)')
    try:
        with open(path, encoding='utf-8') as handle:
            doc = yaml.safe_load(handle)
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        _fail(f'params_file: {path} is not readable YAML ({exc})')
    if doc is None:
        return {}
    if not isinstance(doc, dict):
        _fail(f'params_file: {path} is not a parameter file (no <node>: ros__parameters: map)')
    return doc


def check_arguments(values: Mapping[str, str], default_params_file: str = '') -> LaunchSettings:
    """
    Check every launch argument (strings as launch gives them); return the settings.

    ``default_params_file`` is used when ``params_file`` is empty. Raises
    :class:`LaunchArgumentError` listing every bad argument with its value and the reason.
    """
    unknown = set(values) - {name for name, _, _ in ARGUMENTS}
    if unknown:
        raise KeyError(f'not launch arguments of aetherscan.launch.py: {sorted(unknown)}')
    text = {name: str(values.get(name, default)) for name, default, _ in ARGUMENTS}
    problems: List[str] = []
    flags = {name: _collect(problems, parse_bool, name, text[name])
             for name in ('use_rviz', 'large_data_profile', 'hugepage_malloc')}
    use_sim_time = _collect(problems, parse_bool, 'use_sim_time', text['use_sim_time'], True)
    params_file = os.path.expanduser(text['params_file'].strip()) or default_params_file
    if params_file:
        _collect(problems, load_params_file, params_file)
    topics = tuple(t.strip() for t in text['image_topics'].split(',') if t.strip())
    for topic in topics:
        reason = check_topic(topic, 'image_topics')
        if reason:
            problems.append(reason)
    if len(set(topics)) != len(topics):
        problems.append(f'image_topics: {text["image_topics"]!r} lists a topic twice')
    backend = text['backend'].strip()
    if backend and backend not in BACKENDS:
        problems.append(f'backend: {backend!r} is not one of {", ".join(BACKENDS)} '
                        '(or empty: from params_file)')
    namespace = text['namespace'].strip()
    log_level = text['log_level'].strip()
    for reason in (check_namespace(namespace), log_level and check_log_level(log_level)):
        if reason:
            problems.append(reason)
    if problems:
        raise LaunchArgumentError('aetherscan.launch.py: invalid launch arguments, nothing '
                                  'started:\n  ' + '\n  '.join(problems))
    return LaunchSettings(
        params_file=params_file, image_topics=topics, backend=backend,
        model=text['model'].strip(), namespace=namespace,
        use_rviz=flags['use_rviz'], large_data_profile=flags['large_data_profile'],
        hugepage_malloc=flags['hugepage_malloc'], use_sim_time=use_sim_time,
        log_level=log_level)


def node_namespace(pushed: str, namespace: str) -> str:
    """Return the absolute namespace of the node: ``namespace`` under a pushed ROS namespace."""
    if namespace.startswith('/'):
        full = namespace
    else:
        full = '/'.join(p.strip('/') for p in (pushed, namespace) if p.strip('/'))
    return '/' + full.strip('/') if full.strip('/') else '/'


def resolve_topic(topic: str, namespace: str, node: str = NODE_NAME) -> str:
    """Resolve a topic name as the node does: relative to ``namespace``, ``~`` to the node."""
    base = namespace.rstrip('/')
    if topic.startswith('/'):
        return topic
    if topic.startswith('~'):
        return f'{base}/{node}{topic[1:]}'
    return f'{base}/{topic}'


def _section_pattern(key: str) -> 're.Pattern':
    parts = []
    for token in key.strip('/').split('/'):
        if token == '**':
            parts.append('(/[^/]+)*')
        else:
            parts.append('/' + re.escape(token).replace(r'\*', '[^/]*'))
    return re.compile(''.join(parts) + '$')


def _sections(doc: dict, prefix: str = '') -> List[Tuple[str, dict]]:
    out = []
    for key, value in doc.items():
        if not isinstance(value, dict):
            continue
        name = f'{prefix}/{str(key).strip("/")}'
        if isinstance(value.get('ros__parameters'), dict):
            out.append((name, value['ros__parameters']))
        out += _sections({k: v for k, v in value.items() if k != 'ros__parameters'}, name)
    return out


def node_parameters(doc: dict, namespace: str, node: str = NODE_NAME) -> Dict[str, object]:
    """
    Return the parameters a parameter file gives the node ``<namespace>/<node>``.

    Sections are matched as rcl does (``/**``, ``/*``, ``ns/node``, nested keys); a later
    section overrides an earlier one.
    """
    fqn = node_namespace('', namespace).rstrip('/') + '/' + node
    values: Dict[str, object] = {}
    for key, params in _sections(doc):
        if _section_pattern(key).match(fqn):
            values.update(params)
    return values
