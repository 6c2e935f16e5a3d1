#!/bin/bash
# Rules 43-44: the pose rows with a candidate (bash score43.sh OUT [--param NAME=VALUE ...]; default rule
# 43's two switches, which the code no longer has: rule 44 passes its own). Bags as in session 37: fourds-ros bag convert --format tum|hololens|7scenes
# SRC /tmp/s37/bags/NAME [--stride N] [--reverse] (names below; tum15/kitchen15 stride 2, tum10/kitchen10 stride 3).
export ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST AMENT_PREFIX_PATH=/work/main/.venv ROS_DOMAIN_ID=${ROS_DOMAIN_ID:-153}
cd /work/main
OUT=$1
shift
P=("$@")
[ ${#P[@]} -gt 0 ] || P=(--param pose_smoothing_errors=accumulating --param pose_smoothing_max_order=4)
for n in tum30 tumback tum15 tum10 kitchen kitchen15 kitchen10; do
  .venv/bin/fourds-ros eval /tmp/s37/bags/$n --offline --out "$OUT/$n" --pose-starts 6 "${P[@]}" \
    $( [[ $n == kitchen* ]] && echo --erode 10 ) > /dev/null 2>&1 || echo "FAIL $n"
done
echo SCORED
