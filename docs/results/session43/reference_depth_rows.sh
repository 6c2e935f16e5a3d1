#!/bin/bash
# README, "Metres from an RGB-D camera" (session 43): each recording scored with the model's own metres and with
# metric_scale_source: reference_depth (its ground-truth depth standing in for an RGB-D camera's).
# bash docs/results/session43/reference_depth_rows.sh OUT   (repo root; ../shared/data beside it)
set -e
export ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST AMENT_PREFIX_PATH=$PWD/.venv
OUT=$1; mkdir -p "$OUT"
D=../shared/data
.venv/bin/fourds-ros bag convert --format tum $D/tum_fr1_rpy_f000-079 "$OUT/tum" > /dev/null
.venv/bin/fourds-ros bag convert --format 7scenes $D/7scenes_redkitchen_f000-299 "$OUT/kitchen" > /dev/null
.venv/bin/fourds-ros bag convert --format hololens $D/hololens_dvmvs_000_f00305-00334 "$OUT/holo" > /dev/null
for b in tum kitchen holo; do
  for source in model reference_depth; do
    .venv/bin/fourds-ros eval "$OUT/$b" --offline --out "$OUT/${b}_$source" --param metric_scale_source=$source \
      $( [[ $b == kitchen ]] && echo --erode 10 ) > /dev/null
    .venv/bin/python -c "
import json; d = json.load(open('$OUT/${b}_$source/report.json')); c = d['peers']['constant_depth']['depth']['metric']['abs_rel']
print('$b $source: metric AbsRel', round(d['depth']['metric']['abs_rel'], 3), '(constant', round(c, 3), ') relative',
      round(d['depth']['abs_rel'], 3), 'ATE', round(d['pose']['ate_rmse'], 4))"
  done
done
