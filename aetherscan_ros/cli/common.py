# Copyright 2026 The AetherScan ROS Authors
# SPDX-License-Identifier: Apache-2.0
"""What every ``aetherscan`` verb shares: exit codes, :class:`CliError` and the parser class."""

import argparse
import sys

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


class CliError(Exception):
    """A failure to report as one line; ``code`` is the exit status."""

    def __init__(self, message: str, code: int = EXIT_USAGE):
        super().__init__(message)
        self.code = code


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose usage errors are one line (and exit status 2)."""

    def error(self, message):
        """Print ``PROG: error: MESSAGE (see PROG --help)`` and exit with status 2."""
        sys.stderr.write(f'{self.prog}: error: {message} (see {self.prog} --help)\n')
        sys.exit(EXIT_USAGE)


__all__ = ['CliError', 'EXIT_FAILED', 'EXIT_INTERRUPTED', 'EXIT_OK', 'EXIT_USAGE']
