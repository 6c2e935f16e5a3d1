#!/bin/bash
# README, "Metres from an RGB-D camera" (session 43): each recording scored with the model's own metres and with
# metric_scale_source: reference_depth (its ground-truth depth standing in for an RGB-D camera's), 6 start frames.
# bash docs/results/session43/reference_depth_rows.sh OUT   (repo root; ../shared/data beside it)
set -e
export ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST AMENT_PREFIX_PATH=$PWD/.venv
OUT=$1; mkdir -p "$OUT"
D=../shared/data
convert() { [ -d "$OUT/$1" ] || .venv/bin/fourds-ros bag convert "${@:2}" "$OUT/$1" > /dev/null; }
convert tum --format tum $D/tum_fr1_rpy_f000-079
convert tumback --format tum $D/tum_fr1_rpy_f000-079 --reverse
convert kitchen --format 7scenes $D/7scenes_redkitchen_f000-299
convert holo --format hololens $D/hololens_dvmvs_000_f00305-00334
convert holoback --format hololens $D/hololens_dvmvs_000_f00305-00334 --reverse
for b in tum tumback kitchen holo holoback; do
  for source in model reference_depth; do
    .venv/bin/fourds-ros eval "$OUT/$b" --offline --pose-starts 6 --out "$OUT/${b}_$source" \
      --param metric_scale_source=$source $( [[ $b == kitchen ]] && echo --erode 10 ) > /dev/null
    .venv/bin/python -c "
import json; d = json.load(open('$OUT/${b}_$source/report.json')); c = d['peers']['constant_depth']['depth']['metric']['abs_rel']
s = d['pose_over_starts']
print('$b $source: metric AbsRel', round(d['depth']['metric']['abs_rel'], 3), '(constant', round(c, 3), ') ATE mean of 6 starts',
      round(s['fourds']['ate_mean'], 4), '(ORB VO', round(s['orb_vo']['ate_mean'], 4), ')')"
  done
done
