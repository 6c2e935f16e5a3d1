#!/bin/bash
# Session 45: `bench node` at 1920x1080 and 1280x720 (raw and JPEG, 30 Hz, 20 s, shipped defaults),
# before (BASE: a checkout of f4c9060, on PYTHONPATH) and now (this tree), interleaved.
# bash docs/results/session45/divide_first_rows.sh BASE OUT
set -e
BASE=$1; OUT=$2; mkdir -p "$OUT"
export ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST AMENT_PREFIX_PATH=$PWD/.venv
for size in 1920x1080 1280x720; do
  for code in before now; do
    if [ $code = before ]; then PP=$BASE; else PP=$PWD; fi
    PYTHONPATH=$PP ROS_DOMAIN_ID=73 .venv/bin/python -m fourds_ros bench node --transports raw jpeg --seconds 20 \
      --steps --beside-seconds 0 --size $size --domain 73 --json-dir "$OUT/${code}_$size" --markdown ''
  done
done
