# Copyright 2026 The AetherScan ROS Authors
# SPDX-License-Identifier: Apache-2.0
"""
The package's shape, enforced: ROS-free folders, no import cycles, small modules.

Imports are read with :mod:`ast` (nothing is executed), at module level and inside functions,
so a lazy ``import rclpy`` in a core function is caught as well. docs/ARCHITECTURE.md explains
the folders.
"""

import ast
from pathlib import Path
import re
import sys
from typing import Dict, Iterator, List, Set, Tuple

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGE = 'aetherscan_ros'

# Where rclpy and message packages may be imported: the node shell, the message conversions,
# the demo's ROS programs, and the re-export kept for the old msg_cloud path.
ROS_SIDE = ('aetherscan_ros.node', 'aetherscan_ros.ros', 'aetherscan_ros.demo.publisher',
            'aetherscan_ros.demo.run_demo', 'aetherscan_ros.msg_cloud')
# The one door from cli/ into the ROS side: the entry module of the verbs that talk to a running
# node (play, call, events) may import exactly these ROS-side modules, and only inside a
# function (so no other verb loads rclpy); any other ROS import from it is a violation.
ROS_VERB_ENTRY = 'aetherscan_ros.cli.ros_verbs'
ROS_VERB_MODULES = ('aetherscan_ros.node.play', 'aetherscan_ros.node.client')
# Everything else is the ROS-free side; these folders must exist and hold modules.
ROS_FREE_FOLDERS = ('core', 'cloud', 'backends', 'models', 'files', 'cli')
ROS_PACKAGES = {'rclpy', 'rcl_interfaces', 'rcl_lifecycle', 'rosidl_runtime_py', 'rosbag2_py',
                'tf2_ros', 'tf2_py', 'cv_bridge', 'message_filters', 'sensor_msgs_py',
                'image_geometry', 'launch', 'launch_ros', 'ament_index_python',
                'builtin_interfaces', 'unique_identifier_msgs'}
_INTERFACE_PACKAGE = re.compile(r'.+_(msgs|srvs|actions|interfaces)$')
MAX_MODULE_LINES = 400


def modules_of(root: Path) -> Dict[str, Path]:
    """Return ``{dotted name: file}`` for every module of the package under ``root``."""
    out = {}
    for path in sorted((root / PACKAGE).rglob('*.py')):
        parts = list(path.relative_to(root).with_suffix('').parts)
        if parts[-1] == '__init__':
            parts.pop()
        out['.'.join(parts)] = path
    return out


def imports_in(path: Path, module: str) -> Iterator[Tuple[str, int]]:
    """Yield ``(imported dotted name, line)``; ``from a import b`` yields ``a.b``."""
    tree = ast.parse(path.read_text(encoding='utf-8'), str(path))
    package = module if path.name == '__init__.py' else module.rpartition('.')[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ''
            if node.level:
                parts = package.split('.')[:len(package.split('.')) - node.level + 1]
                base = '.'.join(parts + ([base] if base else []))
            for alias in node.names:
                yield f'{base}.{alias.name}', node.lineno


def lazy_import_lines(path: Path) -> Set[int]:
    """Return the lines of the imports made inside a function (not at import time)."""
    tree = ast.parse(path.read_text(encoding='utf-8'), str(path))
    lines = set()
    for func in ast.walk(tree):
        if isinstance(func, (ast.FunctionDef, ast.AsyncFunctionDef)):
            lines.update(node.lineno for node in ast.walk(func)
                         if isinstance(node, (ast.Import, ast.ImportFrom)))
    return lines


def is_ros(name: str) -> bool:
    """Return whether an imported name belongs to ROS (rclpy, interface packages...)."""
    top = name.split('.')[0]
    return top in ROS_PACKAGES or bool(_INTERFACE_PACKAGE.match(top))


def own_module(name: str, modules: Dict[str, Path], root: Path = REPO) -> str:
    """Return the package module an import of ``name`` loads, or '' outside the package."""
    if root.joinpath(*name.split('.')).with_suffix('.c').exists():
        return ''  # the C extension (aetherscan_ros.cloud._cloudpack) imports nothing
    while name and name not in modules:
        name = name.rpartition('.')[0]
    return name


def on_ros_side(module: str) -> bool:
    return any(module == side or module.startswith(side + '.') for side in ROS_SIDE)


def boundary_violations(root: Path) -> List[str]:
    """
    Return one line per import that breaks the boundary, naming the module and the line.

    An import breaks it when a ROS-free module imports a ROS package, directly or through a
    module of the ROS side. The exception: ``ROS_VERB_ENTRY`` importing one of
    ``ROS_VERB_MODULES`` inside a function.
    """
    modules = modules_of(root)
    problems = []
    for module, path in modules.items():
        if on_ros_side(module):
            continue
        lazy = lazy_import_lines(path) if module == ROS_VERB_ENTRY else set()
        for name, line in imports_in(path, module):
            target = own_module(name, modules, root)
            if line in lazy and target in ROS_VERB_MODULES and not is_ros(name):
                continue
            if is_ros(name) or (target and on_ros_side(target)):
                problems.append(f'{module} ({path.relative_to(root)}:{line}) imports {name}: '
                                'ROS-free modules must not import rclpy, message packages '
                                'or the ROS shell')
    return problems


def import_graph(root: Path) -> Dict[str, Set[str]]:
    """Return ``{module: {package modules it imports}}`` (module level and in functions)."""
    modules = modules_of(root)
    graph: Dict[str, Set[str]] = {m: set() for m in modules}
    for module, path in modules.items():
        for name, _ in imports_in(path, module):
            target = own_module(name, modules, root)
            if target and target != module and target != PACKAGE:
                graph[module].add(target)
    return graph


def cycles(graph: Dict[str, Set[str]]) -> List[List[str]]:
    """Return the strongly connected components of more than one module (Tarjan)."""
    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10 * len(graph) + 100))
    index: Dict[str, int] = {}
    low: Dict[str, int] = {}
    stack: List[str] = []
    found = []

    def visit(node):
        index[node] = low[node] = len(index)
        stack.append(node)
        for child in sorted(graph[node]):
            if child not in index:
                visit(child)
                low[node] = min(low[node], low[child])
            elif child in stack:
                low[node] = min(low[node], index[child])
        if low[node] == index[node]:
            component = []
            while True:
                item = stack.pop()
                component.append(item)
                if item == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_ros_free_folders_exist():
    modules = modules_of(REPO)
    for folder in ROS_FREE_FOLDERS:
        assert any(m.startswith(f'{PACKAGE}.{folder}.') for m in modules), folder


def test_ros_free_modules_import_no_ros():
    problems = boundary_violations(REPO)
    assert not problems, '\n'.join(problems)


def _fake_package(tmp_path: Path, files: Dict[str, str]) -> Path:
    for rel, text in files.items():
        path = tmp_path / PACKAGE / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return tmp_path


@pytest.mark.parametrize('source', [
    'import rclpy\n',
    'def later():\n    from sensor_msgs.msg import Image\n',
    'from aetherscan_ros.node import params\n',
    'from ..ros import images\n',
])
def test_boundary_check_can_fail(tmp_path, source):
    """A core module that imports ROS (even lazily, or via the shell) is named."""
    root = _fake_package(tmp_path, {
        '__init__.py': '', 'core/__init__.py': '', 'core/session.py': source,
        'node/__init__.py': '', 'node/params.py': 'import rclpy\n',
        'ros/__init__.py': '', 'ros/images.py': 'import sensor_msgs.msg\n'})
    problems = boundary_violations(root)
    assert len(problems) == 1 and problems[0].startswith('aetherscan_ros.core.session ('), \
        problems


_VERBS = {'node/play.py': 'import rclpy\n', 'node/client.py': 'import rclpy\n'}
_LAZY_PLAY = 'def cmd_play(args):\n    from aetherscan_ros.node.play import run_play\n'


def test_ros_verb_entry_may_import_its_verbs_lazily(tmp_path):
    """cli/ros_verbs.py may import node/play.py and node/client.py inside a function."""
    lazy_call = 'def cmd_call(args):\n    from ..node import client\n    return client\n'
    root = _fake_package(tmp_path, {
        '__init__.py': '', 'cli/__init__.py': '', 'node/__init__.py': '', **_VERBS,
        'cli/ros_verbs.py': _LAZY_PLAY + lazy_call})
    assert boundary_violations(root) == []


@pytest.mark.parametrize('rel,source', [
    ('cli/ros_verbs.py', 'from aetherscan_ros.node.play import run_play\n'),  # at import time
    ('cli/ros_verbs.py', 'def f():\n    import rclpy\n'),  # ROS itself, even lazily
    ('cli/ros_verbs.py', 'def f():\n    from aetherscan_ros.node import params\n'),  # unlisted
    ('cli/app.py', _LAZY_PLAY),  # another cli module
    ('core/session.py', _LAZY_PLAY),  # a core module
])
def test_ros_verb_exception_is_narrow(tmp_path, rel, source):
    root = _fake_package(tmp_path, {
        '__init__.py': '', 'cli/__init__.py': '', 'core/__init__.py': '',
        'node/__init__.py': '', 'node/params.py': 'import rclpy\n', **_VERBS, rel: source})
    problems = boundary_violations(root)
    module = 'aetherscan_ros.' + rel[:-3].replace('/', '.')
    assert len(problems) == 1 and problems[0].startswith(module + ' ('), problems


def test_no_import_cycles():
    found = cycles(import_graph(REPO))
    assert not found, 'import cycles: ' + '; '.join(' <-> '.join(c) for c in found)


def test_cycle_check_can_fail(tmp_path):
    root = _fake_package(tmp_path, {
        '__init__.py': '', 'a.py': 'from aetherscan_ros import b\n',
        'b.py': 'def f():\n    from aetherscan_ros.a import x\n', 'c.py': 'import os\n'})
    assert cycles(import_graph(root)) == [['aetherscan_ros.a', 'aetherscan_ros.b']]


def test_modules_are_small():
    """No module over ~400 lines: a bigger one is several collaborators."""
    sizes = {m: len(p.read_text(encoding='utf-8').splitlines())
             for m, p in modules_of(REPO).items()}
    big = {m: n for m, n in sizes.items() if n > MAX_MODULE_LINES}
    assert not big, f'modules over {MAX_MODULE_LINES} lines: {big}'
