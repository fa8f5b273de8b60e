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
# * A real ROS 2 sourced (ROS_DISTRO set and rclpy importable): the venv is created with
#   --system-site-packages on top of it and no ROS wheel is installed.
# Idempotent: a stamp of the inputs' checksums makes a second run a no-op that takes a second.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
venv="${1:-$root/.venv}"
py="${PYTHON:-python3}"

log() { printf '[setup] %s\n' "$*" >&2; }
die() { printf '[setup] error: %s\n' "$*" >&2; exit 1; }

command -v "$py" >/dev/null || die "$py not found; install Python 3.10-3.13 (3.11 recommended)"
pyver="$("$py" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
case "$pyver" in
  3.10|3.11|3.12|3.13) ;;
  *) die "Python $pyver is not supported: the ROS 2 wheels exist for CPython 3.10-3.13 only" ;;
esac

mode=wheels
if [ -n "${ROS_DISTRO:-}" ] && "$py" -c 'import rclpy' >/dev/null 2>&1; then
  mode="system-ros-$ROS_DISTRO"
fi

# Everything that decides the venv's content goes into the stamp.
stamp_inputs() {
  cat "$root/requirements.txt" "$root/tools/requirements-ros-jazzy.lock.txt" \
      "$root/tools/setup_env.sh" "$root/tools/build_tf2_msgs.sh" "$root/setup.py" \
      "$root/tools/tf2_msgs/"* 2>/dev/null
  echo "mode=$mode python=$pyver"
}
want="$(stamp_inputs | sha256sum | cut -d' ' -f1)"
stamp="$venv/.aetherscan-setup-stamp"

mkdir -p "$(dirname "$venv")"
exec 9>"$venv.lock"
flock 9

if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && [ -x "$venv/bin/python" ]; then
  log "up to date ($venv, $mode)"
  exit 0
fi

t0=$(date +%s)
if [ ! -x "$venv/bin/python" ]; then
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

if [ "$mode" = wheels ]; then
  log "installing the ROS 2 Jazzy wheels"
  pip_install --no-deps -r "$root/tools/requirements-ros-jazzy.lock.txt"
  log "tf2_msgs"
  bash "$root/tools/build_tf2_msgs.sh" --venv "$venv"
fi

# torch: keep a user's own (e.g. CUDA) build; otherwise the pinned CPU wheel.
reqs="$(mktemp)"
trap 'rm -f "$reqs"' EXIT
if "$vpy" -c 'import torch' >/dev/null 2>&1 && ! grep -q "^torch==$("$vpy" -c 'import torch; print(torch.__version__.split("+")[0])')\$" "$root/requirements.txt"; then
  log "keeping the installed torch $("$vpy" -c 'import torch; print(torch.__version__)')"
  grep -v '^torch==' "$root/requirements.txt" > "$reqs"
  echo "torch==$("$vpy" -c 'import torch; print(torch.__version__)')" > "$reqs.constraints"
else
  cp "$root/requirements.txt" "$reqs"
  grep '^torch==' "$root/requirements.txt" > "$reqs.constraints"
fi
log "installing the Python dependencies (requirements.txt)"
# The constraint stops any dependency from dragging in another (CUDA) torch.
pip_install -r "$reqs" -c "$reqs.constraints"
rm -f "$reqs.constraints"

log "installing aetherscan_ros (editable)"
pip_install --no-deps --no-build-isolation -e "$root"

"$vpy" - <<'PY'
import importlib
for name in ('rclpy', 'sensor_msgs.msg', 'tf2_msgs.msg', 'torch', 'cv2', 'pycolmap',
             'safetensors', 'aetherscan_ros'):
    importlib.import_module(name)
PY
echo "$want" > "$stamp"
log "done in $(( $(date +%s) - t0 )) s ($venv, $mode)"
