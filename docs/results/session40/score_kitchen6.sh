#!/bin/bash
# Rule 36: the kitchen's forward rows over 6 start frames, shipped and candidate (bash score_kitchen6.sh OUT).
export ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST AMENT_PREFIX_PATH=/work/main/.venv
cd /work/main
OUT=$1
for n in kitchen kitchen15 kitchen10; do
  .venv/bin/fourds-ros eval /tmp/s37/bags/$n --offline --erode 10 --pose-starts 6 --out $OUT/shipped/$n > /dev/null 2>&1 || echo FAIL $n
  .venv/bin/fourds-ros eval /tmp/s37/bags/$n --offline --erode 10 --pose-starts 6 --param pose_fuse_sizes=true --out $OUT/candidate/$n > /dev/null 2>&1 || echo FAIL $n
done
echo SCORED
