#!/usr/bin/env bash
# Stages 1-4 of models/fourds_default's recipe: MAE pre-training, then the three readouts with the encoder
# fine-tuned (or the heads alone, HEADS_ONLY=1), then float16 weights (under 50 MB). The later stages (5-20) are
# each one command in the model card (models/fourds_default/README.md); stage 20 with the code revision that ran it.
# Run from the repo root:
#
#   bash training/default_model.sh [DATA_DIR] [OUT_DIR]   # OUT_DIR: runs/default_model unless given
#
# (The default OUT_DIR was models/fourds_default: a run with no arguments wrote over the shipped model.)
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
# A stopped recipe run again goes on where it stopped: pre-training resumes from RUN_DIR (a finished one ends at
# once; one with other data is refused; FRESH=1 deletes RUN_DIR and starts it again) and the readouts resume from
# OUT_DIR/resume.pt, saved every SAVE_EVERY (200) steps and when stopped (Ctrl-C, SIGTERM).
set -euo pipefail
DATA=${1:-../shared/data}
OUT=${2:-runs/default_model}
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
  if [ "$(realpath -m "$INIT")" = "$(realpath -m "$OUT")" ]; then
    echo "error: INIT $INIT is the output folder $OUT: the readouts would write over the model they start from;" \
      "give another OUT_DIR" >&2
    exit 2
  fi
  START=(--init "$INIT")
else
  if [ -z "${BACKBONE:-}" ]; then
    if [ "${FRESH:-0}" = 1 ]; then
      rm -rf "$RUN"  # a fresh run: the budget fits the schedule of a run started from step 0
    fi
    echo "$(date +%T) MAE pre-training"
    ROOTS="$SEVEN_SCENES, $HOLOLENS, $DATA/davis_horsejump-high_badja/JPEGImages_480p"
    for v in ${PRETRAIN_VIDEO:-}; do ROOTS="$ROOTS, $v"; done
    # Always called: a stopped run resumes from $RUN/checkpoint.pt, a finished one with the same settings ends at
    # once, and one with other data (PRETRAIN_VIDEO, DATA) is refused, naming them (skipping a finished run
    # trained the readouts on an encoder that never saw the new videos, without a word).
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
  --workers "$WORKERS" --name fourds_default --out "$OUT" --seed "$SEED" --no-progress \
  --save-every "${SAVE_EVERY:-200}"
rm -rf "$OUT/checkpoint"  # the finished model is in OUT: its progress would ship beside it, in float32

echo "$(date +%T) float16"
python -m training.convert_checkpoint "$OUT" --dtype float16
