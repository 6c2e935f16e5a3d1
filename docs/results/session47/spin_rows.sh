#!/bin/bash
# Rule 49's rows (session 47): bench node at 30 Hz, 640x480, 20 s, raw and JPEG, shipped and candidate
# (ONNX Runtime's pool spins during a run, stops when it returns), 3 rounds, ABBA. Run from the repo root.
set -e
export ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST AMENT_PREFIX_PATH=$PWD/.venv
D=docs/results/session47/spin_rows; mkdir -p $D /tmp/s47/ort_site
cp docs/results/session47/ort_config_sitecustomize.py /tmp/s47/ort_site/sitecustomize.py
row() {  # VARIANT TRANSPORT ROUND
  local env=()
  [ "$1" = candidate ] && env=(PYTHONPATH=/tmp/s47/ort_site "FOURDS_SCRATCH_ORT_CONFIG=session.intra_op.allow_spinning=1;session.force_spinning_stop=1")
  env "${env[@]}" .venv/bin/fourds-ros bench node --transports $2 --seconds 20 --steps --beside-seconds 0 \
    --domain 75 --json-dir $D/$1_$2_$3 --markdown '' > $D/$1_$2_$3.log 2>&1
}
for r in 1 2 3; do
  for t in raw jpeg; do
    if [ $((r % 2)) = 1 ]; then row shipped $t $r; row candidate $t $r; else row candidate $t $r; row shipped $t $r; fi
  done
done
echo done
