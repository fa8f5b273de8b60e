# Copyright 2026 The AetherScan ROS Authors
# SPDX-License-Identifier: Apache-2.0
"""
Linters as tests: flake8 and pep257 with ament's settings, copyright headers, package.xml.

Where the ament_lint packages are importable (a sourced ROS 2, or the ament_flake8 /
ament_pep257 wheels that ``make setup`` installs) their own entry points run, exactly as
``colcon test`` would; otherwise flake8 with ``setup.cfg`` and pydocstyle with ament's ignore list.
Each checker is also run on a deliberately bad file to show that it can fail.
"""

import configparser
import importlib.util
from pathlib import Path
import re
import shutil
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET

REPO = Path(__file__).resolve().parents[1]
# What the lint tests cover: every Python file of the package, its tests, benchmarks, launch
# files and tools, plus setup.py.
LINT_DIRS = ('aetherscan_ros', 'test', 'bench', 'launch', 'tools', 'config')
SKIP_PARTS = {'.venv', 'build', 'install', 'log', '.git', '__pycache__', 'output'}
HEADER = (
    '# Copyright 2026 The AetherScan ROS Authors',
    '# SPDX-License-Identifier: Apache-2.0',
)
# ament_pep257's "ament" convention: check every pydocstyle code except these.
AMENT_PEP257_IGNORE = (
    'D100', 'D101', 'D102', 'D103', 'D104', 'D105', 'D106', 'D107', 'D203', 'D212', 'D404',
)
# The house import order is Google's with this package as the last, local group. ament_flake8.ini
# names no application packages (then `aetherscan_ros` would sort among the third-party ones), so
# the linters are given these names on top of ament's settings.
LOCAL_IMPORT_NAMES = 'aetherscan_ros,bench'
# ament_flake8.ini (ament_lint, Jazzy 0.17.x) and what setup.cfg must therefore say.
AMENT_FLAKE8_SETTINGS = {
    'extend-ignore': 'B902,C816,D100,D101,D102,D103,D104,D105,D106,D107,D203,D212,D404,I202',
    'import-order-style': 'google',
    'max-line-length': '99',
}


def _has_module(name):
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def python_files(root=REPO):
    """
    Return the repo's Python files that the lint tests cover, sorted.

    :param root: repository root.
    :return: ``list[pathlib.Path]``.
    """
    found = [root / 'setup.py'] if (root / 'setup.py').is_file() else []
    for top in LINT_DIRS:
        base = root / top
        if not base.is_dir():
            continue
        for path in sorted(base.rglob('*.py')):
            if not SKIP_PARTS.intersection(path.relative_to(root).parts):
                found.append(path)
    return found


def run_flake8(paths):
    """
    Run flake8 the ament way on ``paths``; return the list of reported problems.

    :param paths: files to check (``list[pathlib.Path]``).
    :return: ``list[str]``, empty when clean.
    """
    args = [str(p) for p in paths]
    if _has_module('ament_flake8'):
        import ament_flake8
        from ament_flake8.main import main_with_errors
        ini = Path(ament_flake8.__file__).parent / 'configuration' / 'ament_flake8.ini'
        with tempfile.TemporaryDirectory() as tmp:
            config = Path(tmp) / 'flake8.ini'
            config.write_text(ini.read_text(encoding='utf-8').rstrip('\n')
                              + f'\napplication-import-names = {LOCAL_IMPORT_NAMES}\n',
                              encoding='utf-8')
            # It prints its report (pytest captures it) and returns the problems.
            rc, errors = main_with_errors(argv=['--config', str(config), *args])
        if rc != 0 and not errors:
            errors = [f'ament_flake8 exited with {rc} (see the captured output)']
        return list(errors)
    proc = subprocess.run(
        [sys.executable, '-m', 'flake8', '--config', str(REPO / 'setup.cfg'),
         f'--application-import-names={LOCAL_IMPORT_NAMES}', '--show-source', *args],
        cwd=REPO, capture_output=True, text=True, timeout=300)
    if proc.returncode == 0:
        return []
    return [proc.stdout + proc.stderr]


def run_pep257(paths):
    """
    Check docstrings with ament's pep257 convention; return the problems found.

    :param paths: files to check (``list[pathlib.Path]``).
    :return: ``list[str]``, one ``file:line code: message`` per problem.
    """
    if _has_module('ament_pep257'):
        from ament_pep257.main import generate_pep257_report
        report = generate_pep257_report(
            [str(p) for p in paths], [], ','.join(AMENT_PEP257_IGNORE), '', 'ament', '', '')
        return [f'{name}:{e["linenumber"]} {e["message"]}'
                for name, errors in report for e in errors]
    import pydocstyle
    problems = []
    for err in pydocstyle.check([str(p) for p in paths], ignore=list(AMENT_PEP257_IGNORE)):
        problems.append(f'{getattr(err, "filename", "?")}:{getattr(err, "line", "?")} '
                        f'{getattr(err, "message", err)}')
    return problems


def header_problems(paths):
    """
    Return files whose first lines (after a shebang / coding line) are not the house header.

    :param paths: files to check.
    :return: ``list[str]``.
    """
    problems = []
    for path in paths:
        lines = path.read_text(encoding='utf-8').splitlines()
        while lines and (lines[0].startswith('#!') or re.match(r'#.*coding[:=]', lines[0])):
            lines.pop(0)
        if tuple(lines[:2]) != HEADER:
            problems.append(f'{path}: first lines must be:\n  ' + '\n  '.join(HEADER))
    return problems


def package_xml_problems(path, expect_name=None, expect_version=None):
    """
    Check a package.xml against the REP 149 (format 3) rules that can be checked offline.

    :param path: the package.xml.
    :param expect_name: package name it must declare (``None``: not checked).
    :param expect_version: version it must declare (``None``: not checked).
    :return: ``list[str]`` of problems, empty when valid.
    """
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as exc:
        return [f'{path}: not well-formed XML: {exc}']
    problems = []
    if root.tag != 'package' or root.get('format') != '3':
        problems.append(f'{path}: root must be <package format="3">')
    order = ['name', 'version', 'description', 'maintainer', 'license', 'url', 'author']
    deps = {'depend', 'build_depend', 'build_export_depend', 'buildtool_depend',
            'buildtool_export_depend', 'exec_depend', 'doc_depend', 'test_depend',
            'conflict', 'replace', 'group_depend', 'member_of_group'}
    tags = [child.tag for child in root if isinstance(child.tag, str)]
    for tag in ('name', 'version', 'description'):
        if tags.count(tag) != 1:
            problems.append(f'{path}: needs exactly one <{tag}>')
    for tag in ('maintainer', 'license'):
        if tag not in tags:
            problems.append(f'{path}: needs at least one <{tag}>')
    for tag in tags:
        if tag not in order and tag not in deps and tag != 'export':
            problems.append(f'{path}: unknown element <{tag}>')
    head = [t for t in tags if t in order]
    if head != sorted(head, key=order.index):
        problems.append(f'{path}: elements out of order: {head} (REP 149: {order})')
    if 'export' in tags and tags.index('export') != len(tags) - 1:
        problems.append(f'{path}: <export> must come last')
    first_dep = min((i for i, t in enumerate(tags) if t in deps), default=len(tags))
    if any(t in order for t in tags[first_dep:]):
        problems.append(f'{path}: <name>..<author> must precede the dependencies')
    name = root.findtext('name', '').strip()
    if not re.fullmatch(r'[a-z][a-z0-9_]*', name):
        problems.append(f'{path}: package name {name!r} must match [a-z][a-z0-9_]*')
    if expect_name is not None and name != expect_name:
        problems.append(f'{path}: name {name!r} differs from setup.py {expect_name!r}')
    version = root.findtext('version', '').strip()
    if not re.fullmatch(r'\d+\.\d+\.\d+', version):
        problems.append(f'{path}: version {version!r} must be MAJOR.MINOR.PATCH')
    if expect_version is not None and version != expect_version:
        problems.append(f'{path}: version {version} differs from setup.py {expect_version}')
    for maintainer in root.findall('maintainer'):
        if not re.fullmatch(r'[^@\s]+@[^@\s]+', maintainer.get('email', '')):
            problems.append(f'{path}: <maintainer> needs an email attribute')
    seen = set()
    for child in root:
        if child.tag in deps:
            key = (child.tag, (child.text or '').strip())
            if not key[1]:
                problems.append(f'{path}: empty <{child.tag}>')
            if key in seen:
                problems.append(f'{path}: duplicate <{child.tag}>{key[1]}</{child.tag}>')
            seen.add(key)
            both = {'build_depend', 'build_export_depend', 'exec_depend'}
            if child.tag == 'depend' and any((t, key[1]) in seen for t in both):
                problems.append(f'{path}: {key[1]} is both <depend> and a narrower tag')
    if root.find('export/build_type') is None:
        problems.append(f'{path}: <export><build_type> missing')
    return problems


def _setup_py_metadata():
    proc = subprocess.run(
        [sys.executable, 'setup.py', '--name', '--version'], cwd=REPO, capture_output=True,
        text=True, timeout=120)
    assert proc.returncode == 0, f'setup.py --name --version failed:\n{proc.stderr}'
    lines = [line.strip() for line in proc.stdout.splitlines() if line.strip()]
    return lines[-2], lines[-1]


def _bad_python_file(tmp_path):
    bad = tmp_path / 'bad_module.py'
    bad.write_text(
        '"""Module without the header."""\n'
        'import sys\n'
        'import os\n\n\n'
        'def f():\n'
        '    """Summary on the first line of a multi-line docstring.\n\n'
        '    More text.\n'
        '    """\n'
        '    return "double quotes" + os.sep + sys.platform + "' + 'x' * 80 + '"\n',
        encoding='utf-8')
    return bad


def test_lint_targets_found():
    """The file discovery finds this file and setup.py (an empty list would pass vacuously)."""
    files = python_files()
    assert Path(__file__).resolve() in files
    assert REPO / 'setup.py' in files
    assert not [f for f in files if '.venv' in f.parts]


def test_flake8():
    """Flake8 with ament's settings finds nothing in the repo's Python files."""
    errors = run_flake8(python_files())
    assert not errors, 'flake8 (ament settings) found problems:\n' + '\n'.join(errors)


def test_flake8_can_fail(tmp_path):
    """The same flake8 run reports bad quotes, import order and a long line."""
    report = '\n'.join(run_flake8([_bad_python_file(tmp_path)]))
    for code in ('Q000', 'I100', 'E501'):
        assert code in report, f'{code} not reported:\n{report}'


def test_setup_cfg_flake8_matches_ament():
    """Setup.cfg [flake8] (the fallback, and a plain `flake8` run) has ament's settings."""
    cfg = configparser.ConfigParser()
    cfg.read(REPO / 'setup.cfg')
    expected = dict(AMENT_FLAKE8_SETTINGS)
    if _has_module('ament_flake8'):
        import ament_flake8
        ini = configparser.ConfigParser()
        ini.read(Path(ament_flake8.__file__).parent / 'configuration' / 'ament_flake8.ini')
        expected = {key: ini['flake8'][key] for key in expected}
    expected['application-import-names'] = LOCAL_IMPORT_NAMES
    for key, value in expected.items():
        got = cfg.get('flake8', key, fallback=None)
        assert got is not None and got.replace(' ', '') == value.replace(' ', ''), \
            f'setup.cfg [flake8] {key} = {got!r}, expected {value!r} (ament + local names)'


def test_pep257():
    """Docstrings follow ament's pep257 convention (all codes but D100-D107, D203, D212, D404)."""
    problems = run_pep257(python_files())
    assert not problems, (
        f'{len(problems)} pep257 problem(s) (ament convention: the summary of a multi-line '
        'docstring starts on its second line, D213; numpy-style sections need underlines):\n'
        + '\n'.join(problems))


def test_pep257_can_fail(tmp_path):
    """The same pep257 run reports a multi-line summary on the first line (D213)."""
    report = '\n'.join(run_pep257([_bad_python_file(tmp_path)]))
    assert 'D213' in report, report


def test_copyright_headers():
    """Every Python file and tools/*.sh starts with the project's copyright and licence lines."""
    files = python_files() + sorted((REPO / 'tools').glob('*.sh'))
    problems = header_problems(files)
    assert not problems, '\n'.join(problems)


def test_copyright_headers_can_fail(tmp_path):
    """A file without the header is reported."""
    assert header_problems([_bad_python_file(tmp_path)])


def test_package_xml():
    """package.xml is well-formed, format 3 and agrees with setup.py; tf2_msgs' too."""
    name, version = _setup_py_metadata()
    problems = package_xml_problems(REPO / 'package.xml', name, version)
    problems += package_xml_problems(REPO / 'tools' / 'tf2_msgs' / 'package.xml')
    root = ET.parse(REPO / 'package.xml').getroot()
    if root.findtext('export/build_type') != 'ament_python':
        problems.append('package.xml: <build_type> must be ament_python')
    execs = {e.text for e in root.findall('exec_depend')}
    execs |= {e.text for e in root.findall('depend')}
    for key in ('rclpy', 'sensor_msgs', 'geometry_msgs', 'std_msgs', 'std_srvs', 'tf2_msgs',
                'visualization_msgs', 'diagnostic_msgs', 'python3-numpy', 'python3-opencv'):
        if key not in execs:
            problems.append(f'package.xml: no exec dependency on {key}')
    assert not problems, '\n'.join(problems)


def test_package_xml_checker_can_fail(tmp_path):
    """A format-2, out-of-order package.xml with a duplicate dependency is rejected."""
    bad = tmp_path / 'package.xml'
    bad.write_text(
        '<?xml version="1.0"?>\n<package format="2"><version>1.0</version><name>Bad-Name</name>'
        '<description>x</description><maintainer>nobody</maintainer><license>MIT</license>'
        '<exec_depend>rclpy</exec_depend><exec_depend>rclpy</exec_depend></package>\n',
        encoding='utf-8')
    text = '\n'.join(package_xml_problems(bad, 'aetherscan_ros'))
    for expected in ('format="3"', 'out of order', 'Bad-Name', 'email', 'duplicate',
                     'build_type'):
        assert expected in text, f'{expected!r} not reported:\n{text}'


def test_xmllint():
    """The XML files are well-formed for xmllint (ament_xmllint when importable)."""
    files = [REPO / 'package.xml', REPO / 'tools' / 'tf2_msgs' / 'package.xml']
    files += sorted((REPO / 'config').glob('*.xml')) + sorted((REPO / 'launch').glob('*.xml'))
    if _has_module('ament_xmllint'):
        from ament_xmllint.main import main
        assert main(argv=[str(f) for f in files]) == 0, 'ament_xmllint found problems'
        return
    xmllint = shutil.which('xmllint')
    if xmllint is None:
        # No xmllint (apt libxml2-utils): Python's parser checks well-formedness; the format-3
        # rules are checked by test_package_xml.
        for path in files:
            ET.parse(path)  # raises ParseError naming the file and line when malformed
        return
    proc = subprocess.run([xmllint, '--noout', *map(str, files)], capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
