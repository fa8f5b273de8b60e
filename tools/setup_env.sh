#!/usr/bin/env bash
# Copyright 2026 The AetherScan ROS Authors
# SPDX-License-Identifier: Apache-2.0
#
# Create or update the project's virtual environment (.venv) from the project's own files.
#
#   tools/setup_env.sh [VENV_DIR]
#
# * No ROS sourced: installs the pinned ROS 2 Jazzy wheels (tools/requirements-ros-jazzy.lock.txt),
#   builds tf2_msgs into the venv from its interface definitions (tools/build_tf2_msgs.sh),
#   then the Python dependencies (requirements.txt) and this package in editable mode.
# * A real ROS 2 sourced (ROS_DISTRO set and its rclpy importable): the venv is created with
#   --system-site-packages on top of it, no ROS wheel is installed, the distro's numpy is kept
#   and tf2_msgs is only built when the distro lacks it.
# * torch: an importable torch (e.g. a user's CUDA build) is kept; otherwise the CPU wheel
#   torch==2.13.0+cpu is installed (never the multi-GB CUDA default from PyPI).
# Idempotent: a stamp of the inputs' checksums makes a second run a no-op that takes a second.
#
# Environment: PYTHON (interpreter for a new venv, default python3), AETHERSCAN_TORCH_INDEX
# (where the CPU torch wheel comes from, default https://download.pytorch.org/whl/cpu),
# AETHERSCAN_NO_APT=1 (never apt-get; see build_tf2_msgs.sh).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
venv="${1:-$root/.venv}"
py="${PYTHON:-python3}"
torch_index="${AETHERSCAN_TORCH_INDEX:-https://download.pytorch.org/whl/cpu}"

log() { printf '[setup] %s\n' "$*" >&2; }
die() { printf '[setup] error: %s\n' "$*" >&2; exit 1; }

command -v "$py" >/dev/null || die "$py not found; install Python 3.10-3.13 (3.11 recommended)"
pyver="$("$py" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
case "$pyver" in
  3.10|3.11|3.12|3.13) ;;
  *) die "Python $pyver ($py) is not supported: the ROS 2 wheels exist for CPython 3.10-3.13" ;;
esac
command -v flock >/dev/null || die "flock not found (package util-linux)"
command -v sha256sum >/dev/null || die "sha256sum not found (package coreutils)"

mode=wheels
if [ -n "${ROS_DISTRO:-}" ]; then
  if "$py" -c 'import rclpy' >/dev/null 2>&1; then
    mode="system-ros-$ROS_DISTRO"
  else
    log "ROS_DISTRO=$ROS_DISTRO is set but $py cannot import rclpy: using the Jazzy wheels"
  fi
fi

# Everything that decides the venv's content goes into the stamp.
stamp_inputs() {
  (cd "$root" && cat requirements.txt tools/requirements-ros-jazzy.lock.txt tools/setup_env.sh \
     tools/build_tf2_msgs.sh setup.py aetherscan_ros/cloud/_cloudpack.c \
     tools/tf2_msgs/CMakeLists.txt tools/tf2_msgs/package.xml \
     tools/tf2_msgs/msg/*.msg tools/tf2_msgs/srv/*.srv tools/tf2_msgs/action/*.action)
  echo "mode=$mode python=$pyver venv=$venv"
}
want="$(stamp_inputs | sha256sum | cut -d' ' -f1)"
stamp="$venv/.aetherscan-setup-stamp"

# One setup at a time per venv (two `make test` in parallel wait for each other).
mkdir -p "$venv"
exec 9>"$venv/.aetherscan-setup.lock"
flock 9

# Modules whose absence means the venv is broken even when the stamp matches.
check_modules='rclpy sensor_msgs.msg std_srvs.srv tf2_msgs.msg torch cv2 pycolmap safetensors
  huggingface_hub PIL scipy numpy pytest flake8 pydocstyle aetherscan_ros'
missing_modules() {
  "$venv/bin/python" - $check_modules <<'PY' 2>/dev/null || echo 'python'
import importlib.util
import sys

missing = []
for name in sys.argv[1:]:
    try:
        found = importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        found = False
    if not found:
        missing.append(name)
print(' '.join(missing))
PY
}

if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && [ -x "$venv/bin/python" ]; then
  gone="$(missing_modules)"
  if [ -z "$gone" ]; then
    log "up to date ($venv, $mode)"
    exit 0
  fi
  log "stamp matches but these do not import: $gone; repairing"
fi

t0=$(date +%s)
if [ -x "$venv/bin/python" ]; then
  # A venv made for the other mode would mix two ROS installs: refuse rather than guess.
  has_system="$(sed -n 's/^include-system-site-packages *= *//p' "$venv/pyvenv.cfg")"
  if [ "$mode" = wheels ] && [ "$has_system" = true ]; then
    die "$venv was made on top of a sourced ROS 2 but no ROS is sourced now; source it" \
        "(e.g. source /opt/ros/jazzy/setup.bash) or remove $venv to build one from wheels"
  elif [ "$mode" != wheels ] && [ "$has_system" != true ]; then
    die "$venv holds the pip-installed ROS 2 wheels but ROS 2 $ROS_DISTRO is sourced; open a" \
        "shell without ROS sourced, or remove $venv to build one on top of $ROS_DISTRO"
  fi
  vpyver="$("$venv/bin/python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
  [ "$vpyver" = "$pyver" ] || die "$venv is Python $vpyver but $py is $pyver: remove $venv"
else
  if [ "$mode" = wheels ]; then
    log "creating $venv (ROS 2 Jazzy from wheels, Python $pyver)"
    "$py" -m venv "$venv"
  else
    log "creating $venv on top of the sourced ROS 2 $ROS_DISTRO (system site packages)"
    "$py" -m venv --system-site-packages "$venv"
  fi
fi
vpy="$venv/bin/python"
# pip warns once per package about the machine's (absent) local index mirrors: drop that noise.
pip_install() {
  "$vpy" -m pip install --disable-pip-version-check -q "$@" 2> >(grep -v '^WARNING: Location' >&2)
}

work="$(mktemp -d "${TMPDIR:-/tmp}/aetherscan-setup.XXXXXX")"
trap 'rm -rf "$work"' EXIT
: > "$work/constraints.txt"

if [ "$mode" = wheels ]; then
  log "installing the ROS 2 Jazzy wheels (tools/requirements-ros-jazzy.lock.txt)"
  pip_install --no-deps -r "$root/tools/requirements-ros-jazzy.lock.txt"
  bash "$root/tools/build_tf2_msgs.sh" --venv "$venv"
else
  # The distro's compiled message packages were built against its numpy: never replace it.
  npv="$("$vpy" -c 'import numpy; print(numpy.__version__)' 2>/dev/null)" \
    || die "ROS 2 $ROS_DISTRO is sourced but numpy does not import (apt install python3-numpy)"
  log "keeping ROS 2 $ROS_DISTRO's rclpy and numpy $npv"
  echo "numpy==$npv" >> "$work/constraints.txt"
  tf2_dir="$("$vpy" -c 'import os, tf2_msgs.msg as m; print(os.path.dirname(m.__file__))' \
    2>/dev/null || true)"
  if [ -n "$tf2_dir" ] && [ "${tf2_dir#"$venv"/}" = "$tf2_dir" ]; then
    log "tf2_msgs comes from ROS 2 $ROS_DISTRO ($tf2_dir)"
  else
    # Not in the distro (e.g. ros-core): build it into the venv (a no-op when already current).
    log "ROS 2 $ROS_DISTRO has no tf2_msgs: building it into $venv"
    bash "$root/tools/build_tf2_msgs.sh" --venv "$venv"
  fi
fi

# torch: keep an importable one (a user's CUDA build); otherwise the pinned CPU wheel.
torch_pin="$(sed -n 's/^torch==\([^ ;#]*\).*/\1/p' "$root/requirements.txt")"
[ -n "$torch_pin" ] || die "requirements.txt has no torch==X pin"
if have_torch="$("$vpy" -c 'import torch; print(torch.__version__)' 2>/dev/null)"; then
  if [ "${have_torch%%+*}" != "$torch_pin" ]; then
    log "keeping the installed torch $have_torch (requirements.txt pins $torch_pin)"
  fi
else
  log "installing torch $torch_pin (CPU build)"
  # A CPU wheel found through the configured indexes / find-links first; then the PyTorch index.
  pip_install "torch==$torch_pin+cpu" 2>/dev/null \
    || pip_install "torch==$torch_pin+cpu" --extra-index-url "$torch_index" \
    || die "could not install torch==$torch_pin+cpu (from the package index or $torch_index)"
  have_torch="$("$vpy" -c 'import torch; print(torch.__version__)')"
fi
# The constraint stops any dependency from dragging in another (CUDA) torch.
echo "torch==$have_torch" >> "$work/constraints.txt"

log "installing the Python dependencies (requirements.txt)"
grep -v -E '^(torch|numpy)==' "$root/requirements.txt" > "$work/requirements.txt"
if [ "$mode" = wheels ]; then
  grep -E '^numpy==' "$root/requirements.txt" >> "$work/requirements.txt" || true
fi
pip_install -r "$work/requirements.txt" -c "$work/constraints.txt"

log "installing aetherscan_ros (editable)"
# Without build isolation it needs the venv's setuptools (>= 70.1 has bdist_wheel); where the
# interpreter's own setuptools is older (e.g. a distro's on a sourced ROS 2), let pip isolate it.
pip_install --no-deps --no-build-isolation -e "$root" 2>/dev/null \
  || pip_install --no-deps -e "$root" \
  || die "pip install -e $root failed (output above)"

gone="$(missing_modules)"
[ -z "$gone" ] || die "set-up finished but these do not import: $gone"
"$vpy" -c 'import rclpy, sensor_msgs.msg, tf2_msgs.msg, aetherscan_ros' \
  || die "set-up finished but rclpy / the messages do not import (see above)"
echo "$want" > "$stamp"
log "done in $(( $(date +%s) - t0 )) s ($venv, $mode, torch $have_torch)"
