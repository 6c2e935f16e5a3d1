#!/usr/bin/env bash
# Same eval numbers before and after a refactor: converts the shared labelled recordings to bags and
# runs `fourds-ros eval --offline` on them, each tree with its own code (the code at REV, a git worktree,
# and the working tree: a change to the dataset readers or the conversion shows too), and compares
# every number in the two report.json files (timings and the bag's path excluded) to 1e-6.
#   bash tools/check_eval_parity.sh REV OUT_DIR [NEW_PARAM ...]
# NEW_PARAMs (NAME=VALUE) go to the new code's `--param`, e.g. pose_source=head for a setting whose
# default changed on purpose after REV.
set -euo pipefail
cd "$(dirname "$0")/.."
USAGE="usage: bash tools/check_eval_parity.sh REV OUT_DIR [NEW_PARAM ...] (NEW_PARAM: NAME=VALUE)"
[ $# -ge 2 ] || { echo "$USAGE" >&2; exit 2; }
REV=$1; OUT=$(realpath -m "$2"); shift 2
ROOT=$(pwd)
PARAMS=(); for p in "$@"; do
  [[ $p == ?*=* ]] || { echo "$p: not NAME=VALUE; $USAGE" >&2; exit 2; }
  PARAMS+=(--param "$p")
done
# before anything in OUT_DIR is removed
git rev-parse -q --verify "$REV^{commit}" >/dev/null || { echo "$REV: no such commit here; $USAGE" >&2; exit 2; }
DATA=${DATA:-../shared/data}
PY=.venv/bin/python
rm -rf "$OUT"/old_tree "$OUT"/*_bag "$OUT"/old_* "$OUT"/new_* && mkdir -p "$OUT"
git worktree add -f --detach "$OUT/old_tree" "$REV" >/dev/null
trap 'git worktree remove --force "$OUT/old_tree"' EXIT
declare -A FORMAT=([hololens]=hololens [tum]=tum [kitchen]=7scenes)
declare -A SRC=([hololens]=samples/hololens_000 [tum]=$DATA/tum_fr1_rpy_f000-079 [kitchen]=$DATA/7scenes_redkitchen_f000-299)
for name in hololens tum kitchen; do
  src=$(realpath -m "${SRC[$name]}")
  (cd "$OUT/old_tree" && PYTHONPATH=. "$ROOT/$PY" -m fourds_ros.cli bag convert --format "${FORMAT[$name]}" "$src" \
      "$OUT/old_${name}_bag" >/dev/null &&
   PYTHONPATH=. "$ROOT/$PY" -m fourds_ros.cli eval "$OUT/old_${name}_bag" \
      --model "$ROOT/models/fourds_default" --out "$OUT/old_$name" --offline >/dev/null)
  .venv/bin/fourds-ros bag convert --format "${FORMAT[$name]}" "$src" "$OUT/new_${name}_bag" >/dev/null
  .venv/bin/fourds-ros eval "$OUT/new_${name}_bag" --model models/fourds_default --out "$OUT/new_$name" --offline \
      "${PARAMS[@]}" >/dev/null
done
$PY - "$OUT" <<'PY'
import json, sys
def flat(d, p=""):
    if isinstance(d, dict):
        return {k2: v2 for k, v in d.items() for k2, v2 in flat(v, f"{p}.{k}" if p else k).items()}
    if isinstance(d, list):
        return {k2: v2 for i, v in enumerate(d) for k2, v2 in flat(v, f"{p}[{i}]").items()}
    return {p: d}
out, bad = sys.argv[1], 0
for name in ("hololens", "tum", "kitchen"):
    old, new = (flat(json.load(open(f"{out}/{w}_{name}/report.json"))) for w in ("old", "new"))
    keys = [k for k in old if not k.startswith(("meta", "bag.path"))
            and not any(s in k for s in ("wall", "latency", "_ms", "fps"))]
    diff = [(k, old[k], new.get(k)) for k in keys if not (
        old[k] == new.get(k) or (isinstance(old[k], float) and isinstance(new.get(k), float) and abs(old[k] - new[k]) <= 1e-6))]
    bad += len(diff)
    print(f"{name}: {len(keys)} values compared, {len(diff)} differ" + "".join(f"\n  {d}" for d in diff[:10]))
sys.exit(1 if bad else 0)
PY
