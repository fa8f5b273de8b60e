#!/usr/bin/env bash
# Copyright 2026 The AetherScan ROS Authors
# SPDX-License-Identifier: Apache-2.0
#
# Linters and pytest for `make test`. pytest's "no tests collected" (exit 5) counts as a failure.
set -uo pipefail
py="${1:-.venv/bin/python}"
"$py" -m pytest -q -rs --durations=20 -p no:cacheprovider "${@:2}"
rc=$?
if [ $rc -eq 5 ]; then
  echo 'run_tests: pytest collected no tests: failing' >&2
  exit 1
fi
exit $rc
