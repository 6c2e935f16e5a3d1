#!/bin/bash
# rule 27 scoring: MODEL OUTROOT
M=$1; O=$2
export ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST AMENT_PREFIX_PATH=/work/main/.venv
cd /work/main
for n in tum30 tumback tum15 tum10 holo2; do
  .venv/bin/fourds-ros eval /tmp/s37/bags/$n --model $M --offline --out $O/fused_$n --pose-starts 6 > /dev/null 2>&1 || echo FAIL $n
done
for n in tum30 tumback; do
  .venv/bin/fourds-ros eval /tmp/s37/bags/$n --model $M --offline --out $O/head_$n --pose-starts 6 --param pose_source=head > /dev/null 2>&1 || echo FAIL head $n
done
.venv/bin/fourds-ros eval /tmp/s37/bags/kitchen --model $M --offline --out $O/fused_kitchen --erode 10 > /dev/null 2>&1 || echo FAIL kitchen
for n in holoback holo; do
  .venv/bin/fourds-ros eval /tmp/s37/bags/$n --model $M --offline --out $O/fused_$n --pose-starts 6 > /dev/null 2>&1 || echo FAIL $n
done
.venv/bin/fourds-ros eval /tmp/s37/bags/kitchenback --model $M --offline --out $O/fused_kitchenback --pose-starts 6 --erode 10 > /dev/null 2>&1 || echo FAIL kitchenback
echo SCORED
