#!/bin/bash
# wait for the node process, then record at two moments
for i in $(seq 1 120); do PID=$(pgrep -f "fourds_ros.ros.perception_node" | head -1); [ -n "$PID" ] && break; sleep 1; done
echo "node pid $PID $(date +%T)"
sleep 250
/tmp/s33/pyspyenv/v/bin/py-spy record --pid $PID --duration 20 --rate 50 --threads --idle --nonblocking --format raw -o /tmp/s33/spy_early.txt 2>&1 | tail -1
echo "early done $(date +%T)"
sleep 160
/tmp/s33/pyspyenv/v/bin/py-spy record --pid $PID --duration 20 --rate 50 --threads --idle --nonblocking --format raw -o /tmp/s33/spy_late.txt 2>&1 | tail -1
echo "late done $(date +%T)"
