#!/bin/bash
# Scratch (session 47): bench node raw rows (30 Hz, 640x480, 20 s; the in-process reference in the same
# process), the shipped ONNX Runtime session or one with extra config entries (ort_config_sitecustomize.py
# on PYTHONPATH, for the node and the reference alike), alternated. Run from the repo root:
#   bash docs/results/session47/ort_config_rows.sh NAME "key=value;key=value" ROUNDS
set -e
NAME=$1; CONFIG=$2; ROUNDS=${3:-2}
export ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST AMENT_PREFIX_PATH=$PWD/.venv
D=docs/results/session47/ort_rows; mkdir -p $D /tmp/s47/ort_site
cp docs/results/session47/ort_config_sitecustomize.py /tmp/s47/ort_site/sitecustomize.py
for r in $(seq 1 $ROUNDS); do
  .venv/bin/fourds-ros bench node --transports raw --seconds 20 --steps --beside-seconds 0 --domain 73 --json-dir $D/shipped_${NAME}_$r --markdown '' > $D/shipped_${NAME}_$r.log 2>&1
  PYTHONPATH=/tmp/s47/ort_site FOURDS_SCRATCH_ORT_CONFIG="$CONFIG" .venv/bin/fourds-ros bench node --transports raw --seconds 20 --steps --beside-seconds 0 --domain 74 --json-dir $D/${NAME}_$r --markdown '' > $D/${NAME}_$r.log 2>&1
done
