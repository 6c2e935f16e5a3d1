#!/bin/bash
# Rule 38 (session 40): bash score38.sh OUT. Both settings of pose_epipolar_follow_every_frame_below_hz
# (0, 20) on the rows the rule names, every row over 6 starts. Bags as in ../session39/score.sh.
export ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST AMENT_PREFIX_PATH=/work/main/.venv
cd /work/main
OUT=$1
for hz in 0 20; do
  for n in tum15 tum10 tum30 tumback kitchen15 kitchen10 kitchen holo2 holo; do
    .venv/bin/fourds-ros eval /tmp/s37/bags/$n --offline --out $OUT/hz$hz/$n --pose-starts 6 \
      --param pose_epipolar_follow_every_frame_below_hz=$hz $( [[ $n == kitchen* ]] && echo --erode 10 ) > /dev/null 2>&1 || echo FAIL $n
  done
done
echo SCORED
