#!/usr/bin/env bash
# Session 49: per-stage times of the node's clips (live 30 Hz, 640x480) beside the same stages in process,
# alternated: reference, raw node, reference, JPEG node, reference. Scratch record; needs the venv and ROS env.
set -euo pipefail
OUT=${OUT:-/tmp/s49/stages}; SHIM_DIR=${SHIM_DIR:-/tmp/s49/shim}; mkdir -p "$OUT" "$SHIM_DIR"
cp "$(dirname "$0")/stage_times_sitecustomize.py" "$SHIM_DIR/sitecustomize.py"
export ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST ROS_DOMAIN_ID=${ROS_DOMAIN_ID:-73} SHIM_DIR
ref() { python "$(dirname "$0")/ref_stages_scratch.py" "$OUT/ref$1.json" 200 > "$OUT/ref$1.out"; }
node() { PYTHONPATH="$SHIM_DIR" FOURDS_STAGE_TIMES="$OUT/node_$1_$2.json" fourds-ros bench node --transports "$1" \
           --seconds 30 --steps --beside-seconds 0 --domain "$ROS_DOMAIN_ID" --json-dir "$OUT/bench_$1_$2" --markdown '' \
           > "$OUT/node_$1_$2.log" 2>&1; }
for round in 1 2; do
  ref "${round}a"; node raw "$round"; ref "${round}b"; node jpeg "$round"; ref "${round}c"
done
python "$(dirname "$0")/stages_table_scratch.py" "$OUT"/ref*.json "$OUT"/node_*.json
