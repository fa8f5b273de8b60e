# Copyright 2026 The AetherScan ROS Authors
# SPDX-License-Identifier: Apache-2.0
"""
The part of the ``ros2`` CLI the README uses, for the README test where no ROS is installed.

Only what has a real equivalent in this environment, nothing pretended:

* ``ros2 run aetherscan_ros EXE ARGS`` runs the console script ``EXE`` of the venv with
  ``ARGS`` (what ``ros2 run`` executes in a colcon workspace);
* ``ros2 launch aetherscan_ros FILE ARGS`` runs the launch file's argument checks (the launch
  library is not installable here; the real launch is tested where it is, test_launch.py) and
  prints the node's command line it would start;
* ``ros2 service call NODE/SRV std_srvs/srv/Trigger`` and ``ros2 topic echo NODE/events`` run
  ``aetherscan call`` / ``aetherscan events``.

Anything else exits 127 with the reason, so a README command this file cannot run fails.
"""

import os
import sys


def main(argv):
    if argv[:2] == ['run', 'aetherscan_ros'] and len(argv) >= 3:
        exe = os.path.join(os.path.dirname(sys.executable), argv[2])
        os.execv(exe, [exe, *argv[3:]])
    if argv[:2] == ['launch', 'aetherscan_ros'] and len(argv) >= 3:
        from aetherscan_ros.node.launch_args import check_arguments
        module = _load_launch(argv[2])
        values = {name: default for name, default, _ in module.declared_arguments()}
        values.update(arg.split(':=', 1) for arg in argv[3:] if ':=' in arg)
        settings = check_arguments(values, module.DEFAULT_PARAMS_FILE)
        print(f'ros2 launch (arguments checked, launch library not installed): {settings}')
        return 0
    if argv[:2] == ['service', 'call'] and len(argv) >= 4 and \
            argv[3] == 'std_srvs/srv/Trigger':
        node, service = argv[2].rsplit('/', 1)
        exe = os.path.join(os.path.dirname(sys.executable), 'aetherscan')
        os.execv(exe, [exe, 'call', service, '--node', node])
    if argv[:2] == ['topic', 'echo'] and len(argv) >= 3 and argv[2].endswith('/events'):
        exe = os.path.join(os.path.dirname(sys.executable), 'aetherscan')
        os.execv(exe, [exe, 'events', '--node', argv[2][:-len('/events')], *argv[3:]])
    print(f'ros2 (README test): not available here: ros2 {" ".join(argv)}', file=sys.stderr)
    return 127


def _load_launch(name):
    import importlib.util
    path = os.path.join(os.environ['AETHERSCAN_REPO'], 'launch', name)
    spec = importlib.util.spec_from_file_location('readme_launch', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
