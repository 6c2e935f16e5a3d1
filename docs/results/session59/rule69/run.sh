#!/bin/bash
# $1: tree (shipped|cand)
export PATH=/work/main/.venv/bin:$PATH ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST AMENT_PREFIX_PATH=/work/main/.venv
cd /tmp/s59/rule/$1
for b in tum_s1 tum_s2 tum_s3 tum_back holo holo_back kitchen; do
  PYTHONPATH=/tmp/s59/rule/$1 python /tmp/s59/rule/score.py /tmp/s57/rate/$b 5 2>/tmp/s59/rule/$1_$b.err | tail -1 >> /tmp/s59/rule/$1.jsonl
done
echo DONE >> /tmp/s59/rule/$1.jsonl
