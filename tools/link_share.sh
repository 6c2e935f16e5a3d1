#!/usr/bin/env bash
# Make the source tree look installed to ament_index (get_package_share_directory) without
# copying: share/fourds_ros/{launch,config,models,package.xml} link back into the repo.
set -euo pipefail
venv=$1
repo=$(cd "$(dirname "$0")/.." && pwd)
share=$venv/share/fourds_ros
mkdir -p "$venv/share/ament_index/resource_index/packages" "$share"
touch "$venv/share/ament_index/resource_index/packages/fourds_ros"
for item in launch config models package.xml; do
  rm -rf "${share:?}/$item"
  ln -s "$repo/$item" "$share/$item"
done
