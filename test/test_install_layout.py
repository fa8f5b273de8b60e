# Copyright 2026 The AetherScan ROS Authors
# SPDX-License-Identifier: Apache-2.0
"""
The colcon-facing files are right: install the package into a temporary prefix and look.

colcon builds an ament_python package with ``setup.py ... install --prefix <install>/<pkg>
--single-version-externally-managed``; this test runs the same on a copy of the sources, so
the working tree gets no build/ or egg-info, and checks what ``ros2 run`` / ``ros2 launch`` need:
``share/<pkg>/package.xml``, the ament index marker, ``launch/*`` and ``config/*`` under
``share/<pkg>``, and the console scripts in ``lib/<pkg>`` (setup.cfg's install_scripts).
"""

import configparser
import json
from pathlib import Path
import shutil
import subprocess
import sys

import pytest

REPO = Path(__file__).resolve().parents[1]
PKG = 'aetherscan_ros'
# Source files that must end up in share/<pkg>/<folder> whenever they exist.
MUST_INSTALL = {'launch': ('*.launch.py', '*.launch.xml', '*.launch.yaml'), 'config': ('*',)}
# Prints setup.py's data_files (as setup.py computes them) without building anything.
DATA_FILES_PROBE = (
    'import json, runpy, setuptools\n'
    'captured = {}\n'
    'setuptools.setup = lambda **kwargs: captured.update(kwargs)\n'
    "runpy.run_path('setup.py', run_name='__main__')\n"
    "print(json.dumps(captured.get('data_files', [])))\n")


@pytest.fixture(scope='module')
def installed(tmp_path_factory):
    """Install a copy of the sources the way colcon does; return ``(src, prefix, log)``."""
    tmp = tmp_path_factory.mktemp('install_layout')
    src = tmp / 'src'
    src.mkdir()
    ignore = shutil.ignore_patterns('__pycache__', '*.pyc', '*.egg-info', '*.so', '*.pyd')
    for name in ('setup.py', 'setup.cfg', 'package.xml', 'README.md'):
        if (REPO / name).is_file():
            shutil.copy2(REPO / name, src / name)
    for name in ('resource', PKG, 'launch', 'config'):
        if (REPO / name).is_dir():
            shutil.copytree(REPO / name, src / name, ignore=ignore)
    prefix = tmp / 'install' / PKG
    (tmp / 'egg').mkdir()
    cmd = [sys.executable, 'setup.py', 'egg_info', '--egg-base', str(tmp / 'egg'),
           'build', '--build-base', str(tmp / 'build'),
           'install', '--prefix', str(prefix), '--record', str(tmp / 'record.txt'),
           '--single-version-externally-managed']
    proc = subprocess.run(cmd, cwd=src, capture_output=True, text=True, timeout=300)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, f'{" ".join(cmd)} failed:\n{log}'
    return src, prefix, log


def _site_packages(prefix):
    found = sorted(prefix.glob('lib/python3*/site-packages'))
    assert found, f'no lib/python3*/site-packages under {prefix}'
    return found[0]


def test_package_xml_and_marker(installed):
    """share/<pkg>/package.xml and the ament index marker are installed."""
    src, prefix, _ = installed
    xml = prefix / 'share' / PKG / 'package.xml'
    assert xml.is_file(), f'{xml} missing'
    assert xml.read_bytes() == (src / 'package.xml').read_bytes()
    marker = prefix / 'share' / 'ament_index' / 'resource_index' / 'packages' / PKG
    assert marker.is_file(), f'{marker} missing: ros2 pkg / ros2 run would not find {PKG}'


def test_declared_data_files(installed):
    """Every file in setup.py's data_files lands at <prefix>/<dest>/<name>, unchanged."""
    src, prefix, _ = installed
    proc = subprocess.run([sys.executable, '-c', DATA_FILES_PROBE], cwd=src,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    data_files = json.loads(proc.stdout.splitlines()[-1])
    assert data_files, 'setup.py declares no data_files'
    for dest, files in data_files:
        for name in files:
            target = prefix / dest / Path(name).name
            assert target.is_file(), f'{name} (data_files -> {dest}) not installed'
            assert target.read_bytes() == (src / name).read_bytes()


@pytest.mark.parametrize('kind', sorted(MUST_INSTALL))
def test_launch_and_config_installed(installed, kind):
    """Launch and config files in the tree are in share/<pkg>/<kind>, none silently lost."""
    src, prefix, _ = installed
    present = sorted({p.name for pattern in MUST_INSTALL[kind]
                      for p in (src / kind).glob(pattern) if p.is_file()})
    dest = prefix / 'share' / PKG / kind
    missing = [name for name in present if not (dest / name).is_file()]
    assert not missing, (f'{kind}/ files {missing} are not installed to share/{PKG}/{kind}: '
                         'the data_files globs in setup.py miss them')


def test_console_scripts_in_lib_pkg(installed):
    """Each console script is an executable in lib/<pkg> (where ros2 run looks), not in bin/."""
    _, prefix, _ = installed
    eggs = sorted(_site_packages(prefix).glob(f'{PKG}-*.egg-info/entry_points.txt'))
    assert eggs, 'no entry_points.txt installed'
    entry = configparser.ConfigParser()
    entry.read(eggs[0])
    scripts = sorted(entry['console_scripts']) if entry.has_section('console_scripts') else []
    assert scripts, 'setup.py declares no console_scripts'
    for name in scripts:
        path = prefix / 'lib' / PKG / name
        assert path.is_file(), f'console script {name} not in lib/{PKG}'
        assert path.stat().st_mode & 0o111, f'{path} is not executable'
        assert not (prefix / 'bin' / name).exists(), f'{name} went to bin/, not lib/{PKG}'


def test_python_packages_installed(installed):
    """Every Python package of the source tree (and py.typed) is in site-packages."""
    src, prefix, _ = installed
    site = _site_packages(prefix)
    for init in sorted((src / PKG).rglob('__init__.py')):
        rel = init.relative_to(src)
        assert (site / rel).is_file(), f'{rel} not installed (missing from find_packages?)'
    for module in sorted((src / PKG).rglob('*.py')):
        rel = module.relative_to(src)
        if (src / rel.parent / '__init__.py').is_file():
            assert (site / rel).is_file(), f'{rel} not installed'
    if (src / PKG / 'py.typed').is_file():
        assert (site / PKG / 'py.typed').is_file(), 'py.typed not installed'
    assert not (site / 'test').exists(), 'the test/ folder was installed as a package'


def test_c_packer_is_compiled_and_imported_from_the_prefix(installed):
    """``setup.py build`` compiles aetherscan_ros.cloud._cloudpack; the installed copy uses it."""
    if not (shutil.which('cc') or shutil.which('gcc')):
        pytest.skip('no C compiler: the extension is optional and the numpy packer is used')
    src, prefix, log = installed
    site = _site_packages(prefix)
    assert list((site / PKG / 'cloud').glob('_cloudpack*.so')), \
        f'_cloudpack not built:\n{log[-2000:]}'
    probe = ('import aetherscan_ros.cloud as c, aetherscan_ros.cloud._cloudpack as k; '
             'print(c.PACKER, k.__file__)')
    env = {'PATH': '/usr/bin:/bin', 'PYTHONPATH': str(site), 'AETHERSCAN_PACKER': 'c'}
    proc = subprocess.run([sys.executable, '-c', probe], cwd=prefix, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    packer, where = proc.stdout.split()
    assert packer == 'c' and Path(where).is_relative_to(site), proc.stdout
