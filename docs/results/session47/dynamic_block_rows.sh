#!/bin/bash
# Scratch (session 47): bench node raw rows, ONNX Runtime's session.dynamic_block_base 4 (via
# ort_config_sitecustomize.py on PYTHONPATH) or not, alternated. Run from the repo root.
set -e
export ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST AMENT_PREFIX_PATH=$PWD/.venv
D=docs/results/session47/dynamic_block_rows; mkdir -p $D /tmp/s47/dbb_site
cp docs/results/session47/ort_config_sitecustomize.py /tmp/s47/dbb_site/sitecustomize.py
for r in 1 2; do
  .venv/bin/fourds-ros bench node --transports raw --seconds 20 --steps --beside-seconds 0 --domain 71 --json-dir $D/none_$r --markdown '' > $D/none_$r.log 2>&1
  PYTHONPATH=/tmp/s47/dbb_site FOURDS_SCRATCH_ORT_CONFIG=session.dynamic_block_base=4 .venv/bin/fourds-ros bench node --transports raw --seconds 20 --steps --beside-seconds 0 --domain 72 --json-dir $D/dbb4_$r --markdown '' > $D/dbb4_$r.log 2>&1
done
