#!/bin/bash
# Session 51: the ORB VO peer with recoverPose's distance limit lifted, against the same model runs.
set -e
cd /work/main
export PATH=/work/main/.venv/bin:$PATH ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST AMENT_PREFIX_PATH=/work/main/.venv
D=../shared/data; B=/tmp/s51/bags; O=/tmp/s51/eval
[ -d $B/tum ] || fourds-ros bag convert --format tum $D/tum_fr1_rpy_f000-079 $B/tum
[ -d $B/tumback ] || fourds-ros bag convert --format tum $D/tum_fr1_rpy_f000-079 $B/tumback --reverse
[ -d $B/holoback ] || fourds-ros bag convert --format hololens $D/hololens_dvmvs_000_f00305-00334 $B/holoback --reverse
[ -d $B/holo ] || fourds-ros bag convert --format hololens $D/hololens_dvmvs_000_f00305-00334 $B/holo
for r in tum tumback holoback holo; do
  fourds-ros eval $B/$r --offline --pose-starts 6 --out $O/$r > $O/$r.log 2>&1
  echo "$r done $(date -u +%T)"
done
