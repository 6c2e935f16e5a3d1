#!/usr/bin/env bash
# Rule 53's rows (RULES.md): the shipped model and the candidate on the same bags, from the repo root.
# Usage: rule53_rows.sh CANDIDATE_MODEL_DIR BAGS_DIR OUT_DIR
# BAGS_DIR holds `fourds-ros bag convert` outputs: tum, tumback (--reverse), holo, holoback (--reverse), kitchen.
set -euo pipefail
candidate=$1 bags=$2 out=$3
export ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST
for model in shipped candidate; do
  dir=models/fourds_default; [ "$model" = candidate ] && dir=$candidate
  mkdir -p "$out/$model"
  for bag in tum tumback holo holoback kitchen; do
    erode=(); [ "$bag" = kitchen ] && erode=(--erode 10)
    badja=(); [ "$bag" = tum ] && badja=(--badja ../shared/data/badja_camel_dog_bear ../shared/data/davis_horsejump-high_badja)
    fourds-ros eval "$bags/$bag" --offline --pose-starts 6 --model "$dir" "${erode[@]}" "${badja[@]}" \
      --out "$out/$model/$bag" > "$out/$model/$bag.log" 2>&1
  done
done
