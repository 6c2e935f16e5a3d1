#!/bin/bash
# Rule 40: every pose row with pose_smoothing_order=3 (bash score40.sh OUT [NAME=VALUE]). Bags as in
# session 37: fourds-ros bag convert --format tum|hololens|7scenes SRC /tmp/s37/bags/NAME [--stride N] [--reverse].
export ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST AMENT_PREFIX_PATH=/work/main/.venv ROS_DOMAIN_ID=${ROS_DOMAIN_ID:-143}
cd /work/main
OUT=$1
P="--param ${2:-pose_smoothing_order=3}"
for n in tum30 tumback tum15 tum10 holo holoback holo2 kitchenback kitchen kitchen15 kitchen10; do
  .venv/bin/fourds-ros eval /tmp/s37/bags/$n --offline --out $OUT/$n --pose-starts 6 $P $( [[ $n == kitchen* ]] && echo --erode 10 ) > /dev/null 2>&1 || echo FAIL $n
done
echo SCORED
