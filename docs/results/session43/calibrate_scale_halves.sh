#!/bin/bash
# A site's metric_scale_factor (session 43): TUM fr1/rpy (validation) cut into two recordings of 40 frames;
# `fourds-ros calibrate-scale` on each, and `eval --offline` of the other with that factor and without.
# bash docs/results/session43/calibrate_scale_halves.sh OUT   (repo root; ../shared/data beside it)
set -e
export ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST AMENT_PREFIX_PATH=$PWD/.venv
OUT=$1; mkdir -p "$OUT"
TUM=../shared/data/tum_fr1_rpy_f000-079
.venv/bin/fourds-ros bag convert --format tum $TUM "$OUT/first" --max-frames 40
.venv/bin/fourds-ros bag convert --format tum $TUM "$OUT/second" --start 40
for b in first second; do .venv/bin/fourds-ros calibrate-scale "$OUT/$b" --json "$OUT/scale_$b.json"; done
score() {  # BAG FACTOR
  .venv/bin/fourds-ros eval "$OUT/$1" --offline --out "$OUT/eval_$1_$2" --param metric_scale_factor=$2 > /dev/null
  .venv/bin/python -c "
import json; d = json.load(open('$OUT/eval_$1_$2/report.json')); c = d['peers']['constant_depth']['depth']['metric']['abs_rel']
m = d['depth']['metric']['abs_rel']
print(f'$1 with factor $2: metric AbsRel {m:.3f} (oracle constant {c:.3f}, {m / c:.2f}x), median-scaled {d[\"depth\"][\"abs_rel\"]:.3f}')"
}
fa=$(.venv/bin/python -c "import json; print(round(json.load(open('$OUT/scale_first.json'))['factor'], 4))")
fb=$(.venv/bin/python -c "import json; print(round(json.load(open('$OUT/scale_second.json'))['factor'], 4))")
score second 1.0; score second $fa; score first 1.0; score first $fb
# The factor's views (model card, session 43): the first half's factor on frames 40-54 (the floor) and 55-79 (the desk).
.venv/bin/fourds-ros bag convert --format tum $TUM "$OUT/f40-54" --start 40 --max-frames 15 > /dev/null
.venv/bin/fourds-ros bag convert --format tum $TUM "$OUT/f55-79" --start 55 > /dev/null
for c in f40-54 f55-79; do .venv/bin/fourds-ros calibrate-scale "$OUT/first" --check "$OUT/$c" | grep checked; done
