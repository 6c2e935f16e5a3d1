#!/bin/bash
# Rule 37 (session 40): ../session39/score.sh's rows, the kitchen's forward rows over 6 starts as in rule 36
# (bash score37.sh NAME=VALUE OUT). Bags as in ../session39/score.sh.
export ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST AMENT_PREFIX_PATH=/work/main/.venv
cd /work/main
P="--param $1"
OUT=$2
.venv/bin/fourds-ros eval /tmp/s37/bags/holo --offline --out $OUT/holo_geometry --pose-starts 6 $P --param pose_source=geometry > /dev/null 2>&1 || echo FAIL holo_geometry
for n in tum30 tumback tum15 tum10 holoback holo2 holo kitchenback kitchen kitchen15 kitchen10; do
  .venv/bin/fourds-ros eval /tmp/s37/bags/$n --offline --out $OUT/$n --pose-starts 6 $P $( [[ $n == kitchen* ]] && echo --erode 10 ) > /dev/null 2>&1 || echo FAIL $n
done
echo SCORED
