#!/usr/bin/env bash
# Give the `make setup` venv (an editable install) the install layout that ros2 run / ros2 launch
# and ament_index expect, without copying:
#   share/fourds_ros/{launch,config,models}/  real directories whose FILES link back into the repo
#     (ros2launch finds launch files with os.walk, which does not descend into directory links),
#   share/fourds_ros/package.xml, share/ament_index/resource_index/packages/fourds_ros,
#   lib/fourds_ros/{perception_node,fourds-ros}  links to the console scripts pip put in bin/.
# `make setup` runs it every time, so a file added to or removed from launch/, config/ or models/ is linked.
set -euo pipefail
venv=$(cd "$1" && pwd)
repo=$(cd "$(dirname "$0")/.." && pwd)
share=$venv/share/fourds_ros
mkdir -p "$venv/share/ament_index/resource_index/packages" "$share" "$venv/lib/fourds_ros"
touch "$venv/share/ament_index/resource_index/packages/fourds_ros"
for folder in launch config models; do
  rm -rf "${share:?}/$folder"
  (cd "$repo" && find "$folder" -type f ! -path '*/__pycache__/*' ! -name '*.pyc') | while read -r f; do
    mkdir -p "$share/$(dirname "$f")"
    ln -s "$repo/$f" "$share/$f"
  done
done
ln -sfn "$repo/package.xml" "$share/package.xml"
for exe in perception_node fourds-ros; do
  test -x "$venv/bin/$exe" || { echo "link_share: $venv/bin/$exe missing (pip install -e . first)" >&2; exit 1; }
  ln -sfn "$venv/bin/$exe" "$venv/lib/fourds_ros/$exe"
done
