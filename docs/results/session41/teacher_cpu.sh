#!/bin/bash
# Exploration (session 41): does --depth-teacher hold the validation scene's depth while the top
# of the encoder trains? Two CPU runs from stage 20, identical but for the teacher, one core each,
# scored by their own --select-on on TUM fr1/rpy (validation) every 100 steps. Not a candidate to
# ship: evidence for the next GPU run's TEACHER=1. Usage: bash teacher_cpu.sh OUT
cd /work/main
OUT=$1
run() {
  OMP_NUM_THREADS=1 .venv/bin/python -m training.train_readouts --init models/fourds_default --cache-features \
    --finetune-blocks 2 --synthetic-realism .gpu/data/textures/* --canonical-focal-px 156 --depth-ssi-weight 2 \
    --depth-grad-weight 0.5 --first-frame-queries 0.8 --num-tracks 64 --train-clips 100 --val-clips 16 \
    --batch-size 8 --real ../shared/data/7scenes_redkitchen_f000-299:1 samples/hololens_000:1 --real-hop 2 \
    --real-fraction 0.5 --lr 2e-4 --encoder-lr-scale 0.3 --flip --select-on ../shared/data/tum_fr1_rpy_f000-079 \
    --save-every 100 --steps 100000 --time-budget 1500 --workers 1 --name fourds_default --seed 41 --no-progress \
    --out "$OUT/$1/model" "${@:2}" > "$OUT/$1.log" 2>&1
}
mkdir -p "$OUT"
run free &
run teacher --depth-teacher models/fourds_default &
wait
echo DONE
