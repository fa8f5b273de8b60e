#!/usr/bin/env bash
# Copyright 2026 The AetherScan ROS Authors
# SPDX-License-Identifier: Apache-2.0
#
# Build tf2_msgs (msg, srv, action) from tools/tf2_msgs into a venv that holds the pip-installed
# ROS 2 wheels, which ship no tf2_msgs. Does nothing when tf2_msgs is already importable and was
# built from the current definitions.
#
#   tools/build_tf2_msgs.sh [--venv DIR] [--force]
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
src="$here/tf2_msgs"
venv="$(cd "$here/.." && pwd)/.venv"
force=0
while [ $# -gt 0 ]; do
  case "$1" in
    --venv) venv="$(cd "$2" && pwd)"; shift 2 ;;
    --force) force=1; shift ;;
    *) echo "usage: $0 [--venv DIR] [--force]" >&2; exit 2 ;;
  esac
done
log() { printf '[tf2_msgs] %s\n' "$*" >&2; }
die() { printf '[tf2_msgs] error: %s\n' "$*" >&2; exit 1; }

vpy="$venv/bin/python"
[ -x "$vpy" ] || die "no venv at $venv (run make setup)"
stamp="$venv/share/tf2_msgs/.aetherscan-build-stamp"
want="$(cat "$src"/CMakeLists.txt "$src"/package.xml "$src"/msg/* "$src"/srv/* "$src"/action/* \
  "$0" | sha256sum | cut -d' ' -f1)"
if [ $force = 0 ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] \
   && "$vpy" -c 'import tf2_msgs.msg' >/dev/null 2>&1; then
  log "up to date"
  exit 0
fi

# System tools: install with apt when we are root, otherwise say what is missing.
need=()
command -v cmake >/dev/null || need+=(cmake)
command -v c++ >/dev/null || need+=(g++)
command -v ninja >/dev/null || command -v make >/dev/null || need+=(ninja-build)
"$vpy" -c 'import sysconfig, os, sys; sys.exit(not os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h")))' \
  || need+=("python3-dev (Python.h for $("$vpy" -c 'import sys; print(sys.version.split()[0])'))")
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    log "installing with apt: ${need[*]}"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq cmake g++ ninja-build python3-dev >/dev/null
  else
    die "missing build tools: ${need[*]} (install them, e.g. sudo apt-get install cmake g++ ninja-build python3-dev)"
  fi
fi

gen=(-G "Unix Makefiles")
command -v ninja >/dev/null && gen=(-G Ninja)
build="$(mktemp -d)"
trap 'rm -rf "$build"' EXIT
log "building into $venv"
export AMENT_PREFIX_PATH="$venv${AMENT_PREFIX_PATH:+:$AMENT_PREFIX_PATH}"
export CMAKE_PREFIX_PATH="$venv${CMAKE_PREFIX_PATH:+:$CMAKE_PREFIX_PATH}"
export PATH="$venv/bin:$PATH"
# The wheels' bootstrapper re-executes Python with LD_LIBRARY_PATH; the generators need it too.
site="$("$vpy" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
libs="$venv/lib"
for d in "$site"/ros_*.libs; do [ -d "$d" ] && libs="$libs:$d"; done
export LD_LIBRARY_PATH="$libs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
cmake -S "$src" -B "$build" "${gen[@]}" -Wno-dev \
  -DCMAKE_INSTALL_PREFIX="$venv" -DCMAKE_BUILD_TYPE=Release -DBUILD_TESTING=OFF \
  -DPython3_EXECUTABLE="$vpy" -DPython3_FIND_VIRTUALENV=ONLY >"$build/configure.log" 2>&1 \
  || { tail -40 "$build/configure.log" >&2; die "cmake configure failed"; }
cmake --build "$build" -j"$(nproc)" >"$build/build.log" 2>&1 \
  || { tail -40 "$build/build.log" >&2; die "build failed"; }
cmake --install "$build" >"$build/install.log" 2>&1 \
  || { tail -40 "$build/install.log" >&2; die "install failed"; }

# The Python package lands in <prefix>/lib/pythonX.Y/site-packages, which is the venv's own.
"$vpy" - <<'PY' || die "self-check failed"
from rclpy.serialization import deserialize_message, serialize_message
from tf2_msgs.action import LookupTransform  # noqa: F401
from tf2_msgs.msg import TF2Error, TFMessage  # noqa: F401
from tf2_msgs.srv import FrameGraph  # noqa: F401
from geometry_msgs.msg import TransformStamped
msg = TFMessage(transforms=[TransformStamped(child_frame_id='a')])
assert deserialize_message(serialize_message(msg), TFMessage).transforms[0].child_frame_id == 'a'
PY
mkdir -p "$(dirname "$stamp")"
echo "$want" > "$stamp"
log "built and checked"
