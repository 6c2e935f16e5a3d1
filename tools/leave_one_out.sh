#!/usr/bin/env bash
# Issue #17's protocol, each way: for every fold of config/splits.yaml, a depth head trained on the
# fold's training scenes only (frozen MAE encoder; synthetic clips textured with the unlabelled
# videos), its checkpoint chosen on the fold's validation scene, then scored there with the suite.
# It measures the training recipe on each held-out scene, not the shipped model (whose depth head
# saw the kitchen and the HoloLens walk). Run from the repo root after `make setup`:
#
#   bash tools/leave_one_out.sh [DATA_DIR] [ENCODER_DIR] [OUT]
#
# ENCODER_DIR: a model dir whose encoder never saw a depth or pose label (default
# runs/mae_allvideo/encoder, the MAE pre-trained on the unlabelled frames of 7-Scenes, the
# HoloLens walk and the unlabelled videos; not in the repo, see the model card). Writes
# OUT/<fold>/{model,suite}/ and OUT/leave_one_out.md. SECONDS_PER_FOLD (default 900) bounds each
# fold's training (feature caching included); CLIPS (default 200) synthetic clips per fold;
# SPLIT (default config/splits.yaml); MAX_FRAMES scores only the first frames (a dry run).
set -euo pipefail
DATA=${1:-../shared/data}
ENCODER=${2:-runs/mae_allvideo/encoder}
OUT=${3:-runs/leave_one_out}
SECONDS_PER_FOLD=${SECONDS_PER_FOLD:-900}
CLIPS=${CLIPS:-200}
SPLIT=${SPLIT:-config/splits.yaml}
export ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST
export AMENT_PREFIX_PATH=${AMENT_PREFIX_PATH:-$PWD/.venv}
PY=${PY:-.venv/bin/python}
TEXTURES=$(ls -d .gpu/data/textures/* 2>/dev/null || true)
[ -n "$TEXTURES" ] || echo "no .gpu/data/textures (tools/gpu_session_prepare.sh not run): synthetic clips untextured" >&2

# One line per fold: name|training recordings (PATH:STRIDE ...)|validation recordings (PATH ...)
FOLDS=$("$PY" - "$DATA" "$SPLIT" <<'EOF'
import sys
from pathlib import Path
from fourds_ros.evaluation.suite import load_split

split, root = load_split(sys.argv[2]), Path(sys.argv[1])
for fold in split.folds:
    # Each recording once: a split's `reverse: true` entries (the same path played backwards) would weigh a
    # recording twice in the real batches (each --real entry is drawn equally often) and be scored twice.
    forwards = [r for r in split.recordings if not r.reverse]
    train = [f"{root / r.path}:2" for r in forwards if r.scene in fold.train]
    val = [str(root / r.path) for r in forwards if r.scene in fold.validation]
    print(f"{fold.name}|{' '.join(train)}|{' '.join(val)}")
EOF
)

while IFS='|' read -r fold train val; do
  [ -n "$fold" ] || continue
  echo "== $fold: train on $train; choose and score on $val"
  # shellcheck disable=SC2086  # word lists on purpose
  "$PY" -m training.train_readouts --backbone "$ENCODER" --cache-features --train-heads depth \
    ${TEXTURES:+--synthetic-realism $TEXTURES} --canonical-focal-px 156 --depth-ssi-weight 2 \
    --depth-grad-weight 0.5 --num-tracks 16 --train-clips "$CLIPS" --val-clips 16 --batch-size 8 \
    --real $train --real-hop 2 --real-fraction 0.5 --real-appearance 1 --lr 5e-4 --flip \
    --select-on $val --save-every 200 --steps 100000 --time-budget "$SECONDS_PER_FOLD" --workers 2 \
    --name "loo_$fold" --out "$OUT/$fold/model" --seed 71 --no-progress
  "${FOURDS:-.venv/bin/fourds-ros}" eval-suite --split "$SPLIT" --fold "$fold" --data-root "$DATA" \
    --out "$OUT/$fold/suite" --offline --validation-only --model "$OUT/$fold/model" ${MAX_FRAMES:+--max-frames $MAX_FRAMES}
done <<< "$FOLDS"

"$PY" - "$OUT" <<'EOF'
import json
import sys
from pathlib import Path

out = Path(sys.argv[1])
lines = ["| fold | validation recording | depth AbsRel (constant) | ratio | metric AbsRel (constant) | ratio |",
         "| --- | --- | --- | --- | --- | --- |"]
for suite_json in sorted(out.glob("*/suite/suite.json")):
    suite = json.loads(suite_json.read_text())
    for r in suite["rows"]:
        rel, const = r["depth_abs_rel"], r["constant_abs_rel"]
        met, const_m = r["metric_abs_rel"], r["constant_metric_abs_rel"]
        lines.append(f"| {suite['fold']['name']} | {r['recording']} | {rel:.3f} ({const:.3f}) | {rel / const:.2f} "
                     f"| {met:.3f} ({const_m:.3f}) | {met / const_m:.2f} |")
table = "\n".join(lines) + "\n"
(out / "leave_one_out.md").write_text(table)
print(table)
EOF
