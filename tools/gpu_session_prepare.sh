#!/usr/bin/env bash
# Prepares the carries of tools/gpu_session.sh on this (CPU) machine, or undoes it:
#   bash tools/gpu_session_prepare.sh [--no-mae-frames]   .gpu/ (data + wheels), .gpum/ (the model),
#                                                         .gpuf/ (the MAE frames, for scratch alone),
#                                                         the tracked weights moved out of the tree
#   bash tools/gpu_session_prepare.sh restore             the tracked weights put back
# Why: a device call carries 64 MiB at most, the tree included, and the weights alone are 47 MB; the
# device has no network, so the wheels are fetched here, for the device's Python (3.12 on the H200
# image in session 41: a cp311 wheel of embreex cost one failed call). Versions: requirements.txt.
# Then (model card, session 41): `run` carry [".gpu"] `SMOKE=0 bash tools/gpu_session.sh setup`, at once
# carry [".gpum"] `... bash tools/gpu_session.sh train` (or [".gpuf"] `... scratch`), then restore.
set -euo pipefail
cd "$(dirname "$0")/.."
PARKED=${PARKED:-/tmp/fourds_weights_parked}
WEIGHTS=models/fourds_default/model.safetensors
if [ "${1:-}" = restore ]; then
  if [ -f "$PARKED/model.safetensors" ] && [ -f "$WEIGHTS" ] && ! cmp -s "$PARKED/model.safetensors" "$WEIGHTS"; then
    # a model adopted from the GPU run before restore: the parked copy must not overwrite it
    echo "$WEIGHTS differs from the parked $PARKED/model.safetensors: keep one, remove the other, restore again" >&2
    exit 1
  elif [ -f "$PARKED/model.safetensors" ]; then
    mv "$PARKED/model.safetensors" "$WEIGHTS"
  elif [ ! -f "$WEIGHTS" ]; then
    echo "no weights parked in $PARKED and none in $WEIGHTS: git checkout -- $WEIGHTS" >&2
    exit 1
  fi
  git diff --quiet -- "$WEIGHTS" || { echo "$WEIGHTS differs from the committed weights" >&2; exit 1; }
  echo "weights restored (unchanged)"
  exit 0
fi
# Parked already (a second run): .gpum would be copied without them.
[ -f "$WEIGHTS" ] || { echo "$WEIGHTS is not in the tree (parked in $PARKED?): run restore first" >&2; exit 1; }
PY=${PYTHON:-.venv/bin/python}
DEVICE_PY=${DEVICE_PY:-3.12}
rm -rf .gpu .gpum .gpuf
"$PY" tools/gpu_session_data.py ../shared/data .gpu/data --frames-out .gpuf/frames "$@"
pins=$(grep -E '^(trimesh|transforms3d|embreex)==' requirements.txt)
# shellcheck disable=SC2086
"$PY" -m pip download -q --no-deps --only-binary=:all: --python-version "$DEVICE_PY" \
  --platform manylinux_2_28_x86_64 -d .gpu/whl $pins
mkdir -p .gpum "$PARKED"
cp -r models/fourds_default .gpum/
# Each call carries the tree (tracked and untracked files git does not ignore, the weights parked) and
# one carry: over 64 MiB the call is refused on the device, after its start (.gpu with the MAE frames in
# it came to 65 MiB in session 66: 13 MB of tree, 17 MB of wheels, 39 MB of data; they travel apart now).
tree=$(git ls-files -co --exclude-standard -z | grep -zv "^$WEIGHTS\$" | du -cb --files0-from=- 2>/dev/null | tail -1 | cut -f1 || true)
for carry in .gpu .gpum .gpuf; do
  [ -e "$carry" ] || continue  # .gpuf: not with --no-mae-frames
  total=$(( tree + $(du -sb "$carry" | cut -f1) ))
  echo "call with $carry: $(( total / 1048576 )) MiB of 64 ($(( (64 * 1048576 - total) / 1048576 )) to spare)"
  if [ "$total" -gt $(( 64 * 1048576 )) ]; then
    echo "the call with $carry is over 64 MiB (the weights are still in the tree)" >&2
    exit 1
  fi
done
mv "$WEIGHTS" "$PARKED/"
echo "weights parked in $PARKED: bash tools/gpu_session_prepare.sh restore when the session is done"
