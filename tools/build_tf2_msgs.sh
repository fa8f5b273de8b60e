#!/usr/bin/env bash
# Copyright 2026 The AetherScan ROS Authors
# SPDX-License-Identifier: Apache-2.0
#
# Build tf2_msgs (msg, srv, action) from tools/tf2_msgs into a venv that has rclpy and the
# rosidl/ament_cmake build tools (pip-installed ROS 2 wheels, which ship no tf2_msgs, or a venv
# on top of a sourced ROS 2 that lacks it, e.g. ros-*-ros-core). Does nothing when tf2_msgs is
# importable and was built here from the current definitions.
#
#   tools/build_tf2_msgs.sh [--venv DIR] [--force]
#
# Environment: CMAKE (default cmake) and CXX (default c++) name the tools; AETHERSCAN_NO_APT=1
# never runs apt-get, even as root (missing tools are then an error that names them).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
src="$here/tf2_msgs"
venv="$(cd "$here/.." && pwd)/.venv"
force=0
while [ $# -gt 0 ]; do
  case "$1" in
    --venv) [ $# -ge 2 ] || { echo "usage: $0 [--venv DIR] [--force]" >&2; exit 2; }
            venv="$(cd "$2" && pwd)"; shift 2 ;;
    --force) force=1; shift ;;
    *) echo "usage: $0 [--venv DIR] [--force]" >&2; exit 2 ;;
  esac
done
log() { printf '[tf2_msgs] %s\n' "$*" >&2; }
die() { printf '[tf2_msgs] error: %s\n' "$*" >&2; exit 1; }

vpy="$venv/bin/python"
[ -x "$vpy" ] || die "no Python at $vpy (run make setup first)"
# Bump when the way the package is built or installed changes (comments do not count).
recipe=2
stamp="$venv/share/tf2_msgs/.aetherscan-build-stamp"
want="$( (cd "$src" && cat CMakeLists.txt package.xml msg/*.msg srv/*.srv action/*.action);
         echo "recipe=$recipe") | sha256sum | cut -d' ' -f1)"
if [ $force = 0 ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] \
   && "$vpy" -c 'import tf2_msgs.msg' >/dev/null 2>&1; then
  log "up to date"
  exit 0
fi

# System tools: install the missing ones with apt when root, otherwise name them and stop.
cmake_bin="${CMAKE:-cmake}"
cxx_bin="${CXX:-c++}"
missing=()
apt_pkgs=()
command -v "$cmake_bin" >/dev/null || { missing+=("cmake ($cmake_bin)"); apt_pkgs+=(cmake); }
command -v "$cxx_bin" >/dev/null || { missing+=("a C++ compiler ($cxx_bin)"); apt_pkgs+=(g++); }
command -v cc >/dev/null || command -v gcc >/dev/null \
  || { missing+=("a C compiler (cc)"); apt_pkgs+=(gcc); }
command -v ninja >/dev/null || command -v make >/dev/null \
  || { missing+=("ninja or make"); apt_pkgs+=(ninja-build); }
if ! "$vpy" -c 'import os, sys, sysconfig
sys.exit(not os.path.isfile(os.path.join(sysconfig.get_paths()["include"], "Python.h")))'; then
  missing+=("Python.h for $("$vpy" -c 'import sys; print(sys.executable, sys.version.split()[0])')")
  apt_pkgs+=(python3-dev)
fi
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && [ "${AETHERSCAN_NO_APT:-0}" != 1 ] && command -v apt-get >/dev/null; then
    log "installing with apt-get: ${apt_pkgs[*]}"
    apt-get update -qq >/dev/null \
      && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
         "${apt_pkgs[@]}" >/dev/null \
      || die "apt-get install ${apt_pkgs[*]} failed"
    cmake_bin="$(command -v "$cmake_bin" || command -v cmake)" || die "cmake still missing"
  else
    die "cannot build tf2_msgs, missing: ${missing[*]}. Install them (Debian/Ubuntu:" \
        "sudo apt-get install ${apt_pkgs[*]}) and run make setup again." \
        "A Python without its headers (Python.h) needs its -dev package or a full build."
  fi
fi

gen=(-G "Unix Makefiles")
command -v ninja >/dev/null && gen=(-G Ninja)
build="$(mktemp -d "${TMPDIR:-/tmp}/aetherscan-tf2_msgs.XXXXXX")"
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
"$cmake_bin" -S "$src" -B "$build/b" "${gen[@]}" -Wno-dev \
  -DCMAKE_CXX_COMPILER="$(command -v "$cxx_bin" || echo c++)" \
  -DCMAKE_INSTALL_PREFIX="$venv" -DCMAKE_BUILD_TYPE=Release -DBUILD_TESTING=OFF \
  -DCMAKE_INSTALL_RPATH="$venv/lib" \
  -DPython3_EXECUTABLE="$vpy" -DPython3_FIND_VIRTUALENV=ONLY >"$build/configure.log" 2>&1 \
  || { tail -40 "$build/configure.log" >&2; die "cmake configure failed (log above)"; }
"$cmake_bin" --build "$build/b" -j"$(nproc)" >"$build/build.log" 2>&1 \
  || { tail -40 "$build/build.log" >&2; die "build failed (log above)"; }
# Stage, then move each file into place with a rename: processes of other users of this venv
# that have the old libraries mapped keep them (overwriting a mapped .so in place crashes them).
DESTDIR="$build/stage" "$cmake_bin" --install "$build/b" >"$build/install.log" 2>&1 \
  || { tail -40 "$build/install.log" >&2; die "install failed (log above)"; }
staged="$build/stage$venv"
[ -d "$staged" ] || die "staged install not found at $staged"
(cd "$staged" && find . \( -type f -o -type l \) -print) | while IFS= read -r f; do
  dest="$venv/${f#./}"
  mkdir -p "$(dirname "$dest")"
  cp -P "$staged/${f#./}" "$dest.aetherscan-new"
  mv -f "$dest.aetherscan-new" "$dest"
done
(cd "$staged" && find . \( -type f -o -type l \) -print | sed "s|^\./|$venv/|") \
  > "$venv/share/tf2_msgs/.aetherscan-install-manifest"

# On a sourced ROS 2 nothing puts <venv>/lib on the library search path, but rosidl looks the
# type support libraries up through LD_LIBRARY_PATH at run time: add it at interpreter start.
if [ ! -e "$site/ros_wheels_bootstrapper.pth" ]; then
  printf '%s\n' "import os; os.environ['LD_LIBRARY_PATH'] = '$venv/lib' + (':' + os.environ['LD_LIBRARY_PATH'] if os.environ.get('LD_LIBRARY_PATH') else '')" \
    > "$site/aetherscan_tf2_msgs_libpath.pth"
fi

# The Python package lands in <prefix>/lib/pythonX.Y/site-packages, which is the venv's own.
"$vpy" - <<'PY' || die "self-check failed: the built tf2_msgs does not import or round-trip"
from geometry_msgs.msg import TransformStamped
from rclpy.serialization import deserialize_message, serialize_message
from tf2_msgs.action import LookupTransform  # noqa: F401
from tf2_msgs.msg import TF2Error, TFMessage  # noqa: F401
from tf2_msgs.srv import FrameGraph  # noqa: F401

msg = TFMessage(transforms=[TransformStamped(child_frame_id='a')])
assert deserialize_message(serialize_message(msg), TFMessage).transforms[0].child_frame_id == 'a'
PY
mkdir -p "$(dirname "$stamp")"
echo "$want" > "$stamp"
log "built and checked ($(wc -l < "$venv/share/tf2_msgs/.aetherscan-install-manifest") files)"
