#!/bin/bash
# rule 32 scoring (bags made as in session 37: fourds-ros bag convert ... /tmp/s37/bags/NAME)
export ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST AMENT_PREFIX_PATH=/work/main/.venv
cd /work/main
P="--param pose_epipolar_hold_unmeasured=true"
.venv/bin/fourds-ros eval /tmp/s37/bags/holo --offline --out /tmp/s39/r32/holo_geometry --pose-starts 6 $P --param pose_source=geometry > /dev/null 2>&1 || echo FAIL holo_geometry
for n in holoback holo2 holo tum15 tum10 tum30 tumback kitchenback; do
  .venv/bin/fourds-ros eval /tmp/s37/bags/$n --offline --out /tmp/s39/r32/$n --pose-starts 6 $P $( [[ $n == kitchen* ]] && echo --erode 10 ) > /dev/null 2>&1 || echo FAIL $n
done
for n in kitchen kitchen15 kitchen10; do
  .venv/bin/fourds-ros eval /tmp/s37/bags/$n --offline --out /tmp/s39/r32/$n --erode 10 $P > /dev/null 2>&1 || echo FAIL $n
done
echo SCORED
