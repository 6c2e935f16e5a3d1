#!/usr/bin/env bash
# Exploration after rule 55 (no rule: a diagnostic, nothing ships from it): the depth head alone
# taught by the unlabelled videos' triangulated relative depth only (no rooms, no synthetic clips),
# scored on TUM's clips (validation) every 100 steps: do these labels carry shape that transfers?
set -euo pipefail
cd "$(dirname "$0")/../../.."
exec python -m training.train_readouts --init models/fourds_default --cache-features --train-heads depth \
  --canonical-focal-px 156 --depth-ssi-weight 2 --depth-grad-weight 0.5 --num-tracks 64 --train-clips 8 \
  --val-clips 8 --batch-size 8 --real-fraction 1.0 \
  --sfm-depth ../shared/data/videos_unlabelled ../shared/data/davis2016_val_subset \
  --lr 5e-5 --flip --select-on ../shared/data/tum_fr1_rpy_f000-079 --save-every 100 \
  --steps 100000 --time-budget 900 --workers 2 --name fourds_default --out runs/sfm_only/model --seed 56 \
  --no-progress
