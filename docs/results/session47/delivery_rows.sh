#!/bin/bash
# Exploration (session 47): bench node raw rows with both beside-the-camera references: the camera's
# process publishing to nobody, and publishing to a bare subscriber process (DDS delivery on).
set -e
export ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST AMENT_PREFIX_PATH=$PWD/.venv
D=docs/results/session47/delivery_rows; mkdir -p $D
for r in 1 2 3; do
  .venv/bin/fourds-ros bench node --transports raw --seconds 20 --steps --beside-seconds 15 --beside-subscriber \
    --domain 76 --json-dir $D/raw_$r --markdown '' > $D/raw_$r.log 2>&1
done
echo done
