# Copyright 2026 The AetherScan ROS Authors
# SPDX-License-Identifier: Apache-2.0
"""
Files: atomic/safe output, PLY, poses JSON, saved results and the preview render.

:mod:`.atomic` (atomic file and directory writes, the output-directory guard), :mod:`.errors`
(``ResultFormatError``), :mod:`.ply` (``cloud.ply``), :mod:`.poses` (``poses.json``),
:mod:`.results` (a whole result directory: ``save_result``, ``load_result``, file names) and
:mod:`.preview` (``preview.png``). Nothing is re-exported here: import from the module.
"""
