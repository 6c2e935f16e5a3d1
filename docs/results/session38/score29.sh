#!/bin/bash
# rule 29 scoring (bags made as in session 37: fourds-ros bag convert ... /tmp/s37/bags/NAME)
export ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST AMENT_PREFIX_PATH=/work/main/.venv
cd /work/main
P="--param pose_epipolar_rotation_guess=true"
for n in tum30 tumback tum15 tum10 holoback holo2 holo kitchenback; do
  .venv/bin/fourds-ros eval /tmp/s37/bags/$n --offline --out /tmp/s38/r29/$n --pose-starts 6 $P $( [[ $n == kitchen* ]] && echo --erode 10 ) > /dev/null 2>&1 || echo FAIL $n
done
for n in kitchen kitchen15 kitchen10; do
  .venv/bin/fourds-ros eval /tmp/s37/bags/$n --offline --out /tmp/s38/r29/$n --erode 10 $P > /dev/null 2>&1 || echo FAIL $n
done
echo SCORED
