# Copyright 2026 The AetherScan ROS Authors
# SPDX-License-Identifier: Apache-2.0
"""
The ``aetherscan`` command line: reconstruct, demo-scene, eval, doctor.

One module per verb: :mod:`.reconstruct` (images -> ``cloud.ply``, ``poses.json``,
``preview.png``), :mod:`.demo_scene` (render the synthetic scene with ground truth),
:mod:`.evaluate` (``aetherscan eval``: score a result against that ground truth) and
:mod:`.doctor` (what this machine can run). :mod:`.app` holds the parser and :func:`main`,
:mod:`.inputs` the image and intrinsics arguments, :mod:`.common` the error type and exit codes.

Heavy modules (numpy, OpenCV, the backends, torch) are imported inside the verbs, so
``aetherscan --help`` is instant and ``aetherscan doctor`` works when torch is missing.

Exit status: 0 success, 1 the work failed (the input could not be reconstructed, a backend is
unavailable, an output could not be written), 2 bad arguments or input files, 130 interrupted
(Ctrl-C). Every failure prints exactly one ``aetherscan <verb>: error: ...`` line on stderr
(``--debug`` adds the traceback).
"""

from aetherscan_ros.cli.app import main

__all__ = ['main']
