#!/bin/bash
# Session 45: `bench node` at 1920x1080 JPEG, 30 Hz, 20 s, shipped defaults, without and with a declared
# plumb_bob lens (TUM fr1's; the node undistorts every frame on its 960x540 working image), interleaved.
# bash docs/results/session45/lens_rows.sh OUT
set -e
OUT=$1; mkdir -p "$OUT"
export ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST AMENT_PREFIX_PATH=$PWD/.venv ROS_DOMAIN_ID=74
for run in 1 2; do
  .venv/bin/python -m fourds_ros bench node --transports jpeg --seconds 20 --steps --beside-seconds 0 \
    --size 1920x1080 --domain 74 --json-dir "$OUT/pinhole_$run" --markdown ''
  .venv/bin/python -m fourds_ros bench node --transports jpeg --seconds 20 --steps --beside-seconds 0 \
    --size 1920x1080 --domain 74 --lens 0.2624 -0.9531 -0.0054 0.0026 1.1633 --json-dir "$OUT/lens_$run" --markdown ''
done
