#!/usr/bin/env bash
# The recipe of models/fourds_default: MAE pre-training, then the three readouts with the encoder
# fine-tuned, then float16 weights (under 50 MB). Run from the repo root:
#
#   bash training/default_model.sh [DATA_DIR] [OUT_DIR]
#
# DATA_DIR holds 7scenes_redkitchen_f000-299 and davis_horsejump-high_badja (../shared/data); the
# HoloLens sequence is the demo sample shipped in samples/hololens_000. Time budgets (seconds) and
# rendering processes come from the environment, so one recipe serves a GPU and a CPU:
#   PRETRAIN_SECONDS (default 150), READOUT_SECONDS (230), WORKERS (nproc - 1),
#   SYNTHETIC_CLIPS (4000), BATCH_SIZE (32); BACKBONE: an existing MAE encoder (skips stage 1);
#   INIT: an existing full model to train further (skips stage 1; the readouts start from its
#   encoder and heads); READOUT_LR (3e-4), SEED (0); HEADS_ONLY=1: keep the encoder frozen and
#   train the heads on its cached features (--cache-features, several times more steps per hour
#   on a CPU); SOFTARGMAX_TEMPERATURE: the tracks head's (TrackHeadConfig); PRETRAIN_VIDEO:
#   more folders of real video (mp4 files or frame folders) for MAE pre-training, space-separated,
#   e.g. "$DATA/videos_unlabelled $DATA/davis2016_val_subset" (issue #17: all the real video; never
#   a validation scene of config/splits.yaml, nor the BADJA clips that score tracks).
# Each stage fits its step count to its budget once the step time is known (time_budget_s /
# --time-budget); the model card records the steps actually run.
set -euo pipefail
DATA=${1:-../shared/data}
OUT=${2:-models/fourds_default}
RUN=${RUN_DIR:-runs/default}
PRETRAIN_SECONDS=${PRETRAIN_SECONDS:-150}
READOUT_SECONDS=${READOUT_SECONDS:-230}
WORKERS=${WORKERS:-$(($(nproc) > 1 ? $(nproc) - 1 : 1))}
SYNTHETIC_CLIPS=${SYNTHETIC_CLIPS:-4000}
BATCH_SIZE=${BATCH_SIZE:-32}
SEVEN_SCENES=$DATA/7scenes_redkitchen_f000-299
HOLOLENS=samples/hololens_000

READOUT_LR=${READOUT_LR:-3e-4}
SEED=${SEED:-0}
if [ -n "${INIT:-}" ]; then
  START=(--init "$INIT")
else
  if [ -z "${BACKBONE:-}" ]; then
    echo "$(date +%T) MAE pre-training"
    rm -rf "$RUN"  # a fresh run: the budget fits the schedule of a run started from step 0
    ROOTS="$SEVEN_SCENES, $HOLOLENS, $DATA/davis_horsejump-high_badja/JPEGImages_480p"
    for v in ${PRETRAIN_VIDEO:-}; do ROOTS="$ROOTS, $v"; done
    python -m training.pretrain --config default --out "$RUN" --no-progress "data.root=[$ROOTS]" \
      "time_budget_s=$PRETRAIN_SECONDS" "num_workers=$WORKERS"
    BACKBONE=$RUN/encoder
  fi
  START=(--backbone "$BACKBONE")
fi

if [ "${HEADS_ONLY:-0}" = 1 ]; then
  MODE=(--cache-features)
else
  MODE=(--finetune)
fi
if [ -n "${SOFTARGMAX_TEMPERATURE:-}" ]; then
  MODE+=(--softargmax-temperature "$SOFTARGMAX_TEMPERATURE")
fi

echo "$(date +%T) readouts"
python -m training.train_readouts "${START[@]}" "${MODE[@]}" \
  --readout-width 192 --readout-heads 6 --num-tracks 64 \
  --train-clips "$SYNTHETIC_CLIPS" --val-clips 64 --batch-size "$BATCH_SIZE" \
  --real "$SEVEN_SCENES:1" "$SEVEN_SCENES:2" "$HOLOLENS:1" --real-hop 1 --real-fraction 0.5 \
  --lr "$READOUT_LR" --encoder-lr-scale 0.3 --flip --steps 100000 --time-budget "$READOUT_SECONDS" \
  --workers "$WORKERS" --name fourds_default --out "$OUT" --seed "$SEED" --no-progress

echo "$(date +%T) float16"
python -m training.convert_checkpoint "$OUT" --dtype float16
