#!/usr/bin/env bash
# Rule 48's rows: eval with and without track_anchor_max_residual=8 on the converted bags, and its cost.
# Usage: bash docs/results/session46/anchor_rows.sh BAGS_DIR OUT_DIR
# (bags: fourds-ros bag convert --format tum|7scenes|hololens ../shared/data/SRC BAGS_DIR/NAME [--reverse])
set -euo pipefail
bags=${1:?BAGS_DIR}; out=${2:?OUT_DIR}
export ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST AMENT_PREFIX_PATH=${AMENT_PREFIX_PATH:-$PWD/.venv}
for bag in tum30 tumback kitchen kitchenback holo holoback; do
  .venv/bin/fourds-ros eval "$bags/$bag" --offline --pose-starts 6 --out "$out/$bag/shipped" > /dev/null
  .venv/bin/fourds-ros eval "$bags/$bag" --offline --pose-starts 6 --param track_anchor_max_residual=8 \
    --out "$out/$bag/anchor8" > /dev/null
done
.venv/bin/python - "$out" <<'PY'
import json, sys
from fourds_ros.bench.node import pipeline_clip_ms
rows = [{"param": r, **pipeline_clip_ms({"track_anchor_max_residual": r}, 64)} for r in (0.0, 8.0, 8.0, 0.0)]
json.dump(rows, open(f"{sys.argv[1]}/cost.json", "w"), indent=1)
for r in rows:
    print(r["param"], round(r["pipeline_ms_p50"], 1), round(r["refine_ms_p50"], 2))
PY
