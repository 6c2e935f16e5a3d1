#!/bin/bash
# Session 45: the shipped defaults against `work_image_max_pixels: 76800` (a 640x480 camera worked at
# 320x240 by the classical steps; the model's input is made from it too): `eval --offline` rows and
# the in-process pipeline per clip. bash docs/results/session45/half_work_rows.sh BAGS OUT
set -e
BAGS=$1; OUT=$2; mkdir -p "$OUT"
for bag in tum30 tumback kitchen holo; do
  for budget in 589824 76800; do
    .venv/bin/python -m fourds_ros eval "$BAGS/$bag" --offline --pose-starts 6 \
      --param work_image_max_pixels=$budget --out "$OUT/${bag}_$budget" > "$OUT/${bag}_$budget.log" 2>&1
  done
done
.venv/bin/python - "$OUT" <<'PY'
import json, sys
from fourds_ros.bench.node import pipeline_clip_ms
from fourds_ros.perception.settings import PerceptionSettings
out = {}
for budget in (589824, 76800, 589824, 76800):  # interleaved: the host drifts
    row = pipeline_clip_ms({"work_image_max_pixels": budget}, 64)
    out.setdefault(str(budget), []).append(row)
    print(budget, row, flush=True)
json.dump(out, open(f"{sys.argv[1]}/pipeline_clip_ms.json", "w"), indent=1)
PY
