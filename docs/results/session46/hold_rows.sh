#!/usr/bin/env bash
# Rule 47's rows: bench node with and without intake_hold_during_inference, interleaved (ABBA).
# Usage: bash docs/results/session46/hold_rows.sh OUT_DIR   (about 16 minutes on the 2-core CPU)
set -euo pipefail
out=${1:?OUT_DIR}
mkdir -p "$out"
export ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST AMENT_PREFIX_PATH=${AMENT_PREFIX_PATH:-$PWD/.venv}
row() {  # round transport value
  .venv/bin/fourds-ros bench node --transports "$2" --seconds 20 --steps --beside-seconds 0 \
    --param "intake_hold_during_inference=$3" --domain 83 --json-dir "$out/tmp" --markdown '' > "$out/$1_$2_$3.log" 2>&1
  mv "$out/tmp/node.json" "$out/$1_$2_$3.json"
}
for round in 1 2 3; do
  if (( round % 2 )); then order="false true true false"; else order="true false false true"; fi
  set -- $order
  row "$round" raw "$1"; row "$round" raw "$2"; row "$round" jpeg "$3"; row "$round" jpeg "$4"
done
rm -rf "$out/tmp"
