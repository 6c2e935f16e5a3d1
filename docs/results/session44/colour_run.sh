#!/usr/bin/env bash
# Rule 45's run: stage 20's recipe (model card, session 25) from the shipped model, plus --real-colour 2.
# Usage: bash docs/results/session44/colour_run.sh OUT   (from the repository root, ../shared beside it)
set -euo pipefail
OUT=${1:-runs/colour_s44}
D=../shared/data
.venv/bin/python -m training.train_readouts --init models/fourds_default --cache-features --finetune-blocks 2 \
  --synthetic-realism $D/videos_unlabelled/*.mp4 $D/davis2016_val_subset/*.mp4 \
  --canonical-focal-px 156 --depth-ssi-weight 2 --depth-grad-weight 0.5 --first-frame-queries 0.8 --still-clips \
  --num-tracks 64 --train-clips 400 --val-clips 64 --batch-size 8 \
  --real $D/7scenes_redkitchen_f000-299:1 $D/7scenes_redkitchen_f000-299:2 samples/hololens_000:1 samples/hololens_000:1 \
  --real-hop 1 --real-fraction 0.5 --real-colour 2 --lr 1e-4 --encoder-lr-scale 0.3 \
  --flip --photometric $D/videos_unlabelled $D/davis2016_val_subset --photometric-batch 2 \
  --select-on $D/tum_fr1_rpy_f000-079 --save-every 200 --steps 100000 --time-budget 4200 --workers 2 \
  --name fourds_default --seed 44 --no-progress --out "$OUT/model"
