#!/usr/bin/env bash
# Differential fuzz of the image-publisher following rules (session 72), run from the repo root:
#   bash docs/results/session72/follow_fuzz/follow_fuzz.sh REV N SEED
# e.g. REV=8237bf4 (before the relay rule) N=4000 SEED=1 -> per class: camera frames rejected and intruder frames taken,
# old (REV) against this checkout, and $FUZZ_OUT/worse_<SEED>.json (default /tmp; schedules where this checkout is worse).
set -euo pipefail
REV=$1; N=$2; SEED=$3
OLD=$(mktemp --suffix=_health.py)
trap 'rm -f "$OLD"' EXIT
git show "$REV:fourds_ros/perception/health.py" > "$OLD"
OLD_HEALTH=$OLD PYTHONPATH=. .venv/bin/python docs/results/session72/follow_fuzz/follow_fuzz.py "$N" "$SEED"
