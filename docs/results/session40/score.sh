#!/bin/bash
# Scoring of rule 34 (session 40): bash score.sh NAME=VALUE OUT, e.g. pose_source=geometry; as session 39's rules 30-33
# (rules 34-35: pose_source=geometry, pose_fuse_sizes=true). Bags as in session 37:
# fourds-ros bag convert --format tum|hololens|7scenes SRC /tmp/s37/bags/NAME [--stride N] [--reverse].
# Today the same rows come from tools/pose_proxy_study.py and tools/frame_rate_study.py with --param.
export ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST AMENT_PREFIX_PATH=/work/main/.venv
cd /work/main
P="--param $1"
OUT=$2
.venv/bin/fourds-ros eval /tmp/s37/bags/holo --offline --out $OUT/holo_geometry --pose-starts 6 $P --param pose_source=geometry > /dev/null 2>&1 || echo FAIL holo_geometry
for n in tum30 tumback tum15 tum10 holoback holo2 holo kitchenback; do
  .venv/bin/fourds-ros eval /tmp/s37/bags/$n --offline --out $OUT/$n --pose-starts 6 $P $( [[ $n == kitchen* ]] && echo --erode 10 ) > /dev/null 2>&1 || echo FAIL $n
done
for n in kitchen kitchen15 kitchen10; do
  .venv/bin/fourds-ros eval /tmp/s37/bags/$n --offline --out $OUT/$n --erode 10 $P > /dev/null 2>&1 || echo FAIL $n
done
echo SCORED
