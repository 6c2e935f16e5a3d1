#!/usr/bin/env bash
# Exploration after rule 54 (no rule): its command with the pose head trained too, from the repo root; the log goes to docs/results/session48/explore_pose_train.log.
set -euo pipefail
python -m training.train_readouts --init models/fourds_default --cache-features --finetune-blocks 2 \
  --encoder-lr-scale 0.3 --train-heads depth pose --depth-teacher models/fourds_default --depth-teacher-holds shape --depth-teacher-weight 10 \
  --synthetic-realism ../shared/data/videos_unlabelled/*.mp4 ../shared/data/davis2016_val_subset/*.mp4 \
  --canonical-focal-px 156 --depth-ssi-weight 2 --depth-grad-weight 0.5 --num-tracks 64 --train-clips 300 \
  --val-clips 32 --batch-size 8 --real ../shared/data/7scenes_redkitchen_f000-299:1 \
  ../shared/data/7scenes_redkitchen_f000-299:2 samples/hololens_000:1 samples/hololens_000:1 \
  --real-zoom 1.25 2.5 --real-hop 1 --real-fraction 0.6 --real-appearance 1 --lr 5e-5 --flip \
  --select-on ../shared/data/tum_fr1_rpy_f000-079 --select-no-worse depth_abs_rel_scaled --save-every 100 \
  --steps 100000 --time-budget 1200 --workers 2 --name fourds_default --out runs/explore55/model --seed 55 \
  --no-progress 2>&1 | tee docs/results/session48/explore_pose_train.log
