#!/usr/bin/env bash
# Rule 50's rows: eval the shipped model and the --real-zoom run's model on the converted bags.
# Usage: bash docs/results/session47/zoom_rows.sh BAGS_DIR OUT_DIR CANDIDATE_MODEL_DIR
# (bags: fourds-ros bag convert --format tum|7scenes|hololens ../shared/data/SRC BAGS_DIR/NAME [--reverse])
set -euo pipefail
bags=${1:?BAGS_DIR}; out=${2:?OUT_DIR}; candidate=${3:?CANDIDATE_MODEL_DIR}
export ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST AMENT_PREFIX_PATH=${AMENT_PREFIX_PATH:-$PWD/.venv}
for bag in tum30 tumback kitchen holo; do
  .venv/bin/fourds-ros eval "$bags/$bag" --offline --pose-starts 6 --out "$out/$bag/shipped" > /dev/null
  .venv/bin/fourds-ros eval "$bags/$bag" --offline --pose-starts 6 --model "$candidate" --out "$out/$bag/zoom" > /dev/null
done
