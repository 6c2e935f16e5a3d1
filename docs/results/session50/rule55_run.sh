#!/usr/bin/env bash
# Rule 55's run (docs/results/session50/RULES.md): the depth head alone, from the shipped model, with
# the unlabelled videos' triangulated relative depth (--sfm-depth) beside the two training rooms.
set -euo pipefail
cd "$(dirname "$0")/../../.."
exec python -m training.train_readouts --init models/fourds_default --cache-features --train-heads depth \
  --synthetic-realism ../shared/data/videos_unlabelled/*.mp4 ../shared/data/davis2016_val_subset/*.mp4 \
  --canonical-focal-px 156 --depth-ssi-weight 2 --depth-grad-weight 0.5 --num-tracks 64 --train-clips 300 \
  --val-clips 32 --batch-size 8 --real ../shared/data/7scenes_redkitchen_f000-299:1 \
  ../shared/data/7scenes_redkitchen_f000-299:2 samples/hololens_000:1 samples/hololens_000:1 \
  --sfm-depth ../shared/data/videos_unlabelled ../shared/data/davis2016_val_subset \
  --real-hop 1 --real-fraction 0.6 --real-appearance 1 --lr 5e-5 --flip \
  --select-on ../shared/data/tum_fr1_rpy_f000-079 --select-no-worse depth_abs_rel_scaled --save-every 100 \
  --steps 100000 --time-budget 1500 --workers 2 --name fourds_default --out runs/rule55/model --seed 55 \
  --no-progress
