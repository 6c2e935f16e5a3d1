#!/bin/bash
# The runs of session 32's scheduling A/B, in their order (repo root, after make setup):
#   bash docs/results/session32/scheduling/runs.sh OUT
# A: shipped; B: executor thread SCHED_IDLE; C: executor thread SCHED_BATCH.
OUT=${1:?out dir}
HERE=$(dirname "$0")
export ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST AMENT_PREFIX_PATH=$PWD/.venv
run() { # $1 name, $2 chrt policy flag or none
  if [ "$2" != none ]; then POLICY=$2 bash "$HERE/set_executor_policy.sh" > "$OUT/$1.watch" 2>&1 & fi
  .venv/bin/fourds-ros bench node --transports raw --seconds 20 --steps --domain 71 --json-dir "$OUT/$1" --markdown ''
  wait
}
mkdir -p "$OUT"
run A1 none; run B1 -i; run B2 -i; run A2 none
run C1 -b; run A3 none; run B3 -i; run C2 -b; run A4 none
run A5 none; run C3 -b; run C4 -b; run A6 none
