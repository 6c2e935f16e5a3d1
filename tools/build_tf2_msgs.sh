#!/usr/bin/env bash
# Build the ROS 2 message package tf2_msgs (TFMessage only) from source with
# the pip-installed rosidl / ament_cmake wheels and install it into a venv.
#
# Usage: tools/build_tf2_msgs.sh VENV_DIR
#
# Result (same layout as the ros-*-msgs wheels):
#   VENV_DIR/lib/libtf2_msgs__*.so                      C/C++ typesupport libs
#   VENV_DIR/lib/python3.X/site-packages/tf2_msgs/      Python package
#   VENV_DIR/share/tf2_msgs, VENV_DIR/include/tf2_msgs  ament index, headers
# At runtime nothing beyond what the other ros wheels need is required:
# ros_wheels_bootstrapper.pth puts VENV_DIR/lib on LD_LIBRARY_PATH;
# AMENT_PREFIX_PATH=VENV_DIR is the usual ROS setting.
#
# Idempotent: exits 0 at once when tf2_msgs already imports and loads.
set -euo pipefail

if [[ $# -ne 1 ]]; then
  echo "usage: $0 VENV_DIR" >&2
  exit 2
fi
VENV_DIR="$(cd "$1" && pwd)"
PY="$VENV_DIR/bin/python"
[[ -x "$PY" ]] || { echo "error: $PY not found" >&2; exit 2; }

export AMENT_PREFIX_PATH="$VENV_DIR${AMENT_PREFIX_PATH:+:$AMENT_PREFIX_PATH}"
export PATH="$VENV_DIR/bin:$PATH"

# Importing the module and loading its C typesupport proves the install works.
check_tf2_msgs() {
  "$PY" -c 'from tf2_msgs.msg import TFMessage
TFMessage.__class__.__import_type_support__()
assert TFMessage._TYPE_SUPPORT is not None' >/dev/null 2>&1
}

if check_tf2_msgs; then
  echo "tf2_msgs already installed in $VENV_DIR"
  exit 0
fi

start=$(date +%s)

# 1. ament_cmake (CMake macros) is not pulled in by the runtime wheels.
if [[ ! -f "$VENV_DIR/share/ament_cmake/cmake/ament_cmakeConfig.cmake" ]]; then
  ament_ver="$("$PY" -c 'import importlib.metadata as m
print(m.version("ros-ament-cmake-include-directories"))' 2>/dev/null || echo 2.7.3)"
  echo "installing ros-ament-cmake==$ament_ver into $VENV_DIR"
  "$PY" -m pip install -q "ros-ament-cmake==$ament_ver"
fi
for tool in cmake ninja; do
  [[ -x "$VENV_DIR/bin/$tool" ]] || "$PY" -m pip install -q "$tool"
done

# 2. The wheels' CMake export files hard-code the build machine's Python
#    (/opt/python/cp311-cp311); point them at this venv's interpreter/numpy.
py_inc="$("$PY" -c 'import sysconfig; print(sysconfig.get_paths()["include"])')"
np_inc="$("$PY" -c 'import numpy; print(numpy.get_include())')"
py_ver="$("$PY" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
mapfile -t stale < <(grep -rl --include='*.cmake' '/opt/python/cp3' "$VENV_DIR/share" 2>/dev/null || true)
if [[ ${#stale[@]} -gt 0 ]]; then
  echo "fixing /opt/python paths in ${#stale[@]} CMake files"
  sed -i \
    -e "s#/opt/python/cp3[0-9]*-cp3[0-9]*/lib/python${py_ver}/site-packages/numpy/_core/include#${np_inc}#g" \
    -e "s#/opt/python/cp3[0-9]*-cp3[0-9]*/include/python${py_ver}#${py_inc}#g" \
    "${stale[@]}"
fi

# 3. Sources + build in a temporary directory.
work="$(mktemp -d -t tf2_msgs_build.XXXXXX)"
trap 'rm -rf "$work"' EXIT
src="$work/src"
mkdir -p "$src/msg"

cat >"$src/msg/TFMessage.msg" <<'EOF'
geometry_msgs/TransformStamped[] transforms
EOF

cat >"$src/package.xml" <<'EOF'
<?xml version="1.0"?>
<package format="3">
  <name>tf2_msgs</name>
  <version>0.42.0</version>
  <description>Messages for tf2 (TFMessage only, built locally).</description>
  <maintainer email="noreply@example.com">fourds_ros</maintainer>
  <license>BSD</license>

  <buildtool_depend>ament_cmake</buildtool_depend>
  <buildtool_depend>rosidl_core_generators</buildtool_depend>
  <depend>geometry_msgs</depend>
  <exec_depend>rosidl_core_runtime</exec_depend>
  <member_of_group>rosidl_interface_packages</member_of_group>

  <export>
    <build_type>ament_cmake</build_type>
  </export>
</package>
EOF

cat >"$src/CMakeLists.txt" <<'EOF'
cmake_minimum_required(VERSION 3.20)
project(tf2_msgs)

find_package(ament_cmake REQUIRED)
find_package(geometry_msgs REQUIRED)
find_package(rosidl_core_generators REQUIRED)

rosidl_generate_interfaces(${PROJECT_NAME}
  "msg/TFMessage.msg"
  DEPENDENCIES geometry_msgs
)

ament_export_dependencies(rosidl_core_runtime)
ament_package()
EOF

echo "building tf2_msgs in $work"
log="$work/build.log"
if ! {
  cmake -S "$src" -B "$work/build" -G Ninja \
    -DCMAKE_MAKE_PROGRAM="$VENV_DIR/bin/ninja" \
    -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_INSTALL_PREFIX="$VENV_DIR" \
    -DCMAKE_PREFIX_PATH="$VENV_DIR" \
    -DPython3_EXECUTABLE="$PY" \
    -DPython3_FIND_VIRTUALENV=ONLY \
    -DBUILD_TESTING=OFF &&
  cmake --build "$work/build" -j "$(nproc)" &&
  cmake --install "$work/build"
} >"$log" 2>&1; then
  tail -n 60 "$log" >&2
  echo "error: tf2_msgs build failed" >&2
  exit 1
fi

if ! check_tf2_msgs; then
  "$PY" -c 'from tf2_msgs.msg import TFMessage
TFMessage.__class__.__import_type_support__()' >&2 || true
  echo "error: tf2_msgs installed but does not import" >&2
  exit 1
fi
echo "tf2_msgs installed into $VENV_DIR in $(( $(date +%s) - start )) s"
