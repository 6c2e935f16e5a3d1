#!/bin/bash
# $1: tree (cand|shipped); $2..: bags
export PATH=/work/main/.venv/bin:$PATH ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST AMENT_PREFIX_PATH=/work/main/.venv
tree=$1; shift
cd /tmp/s61/rule/$tree
for b in "$@"; do
  PYTHONPATH=/tmp/s61/rule/$tree python /tmp/s61/rule/score.py /tmp/s57/rate/$b 5 2>/tmp/s61/rule/${tree}_$b.err | tail -1 >> /tmp/s61/rule/$tree.jsonl
done
echo DONE >> /tmp/s61/rule/$tree.jsonl
