#!/bin/bash
# Set the perception node's main (executor) thread to the policy chrt takes from $POLICY (-b: SCHED_BATCH,
# -i: SCHED_IDLE) 10 s after its process appears (once configure has made the engine's threads,
# which keep their own policy). Only that one thread changes: chrt -p without -a.
while true; do
  pid=$(pgrep -f "fourds_ros.ros.perception_node" | head -1)
  if [ -n "$pid" ]; then sleep 10; chrt $POLICY -p 0 $pid && echo "policy $POLICY set on $pid" && for t in /proc/$pid/task/*; do echo "$(basename $t) $(chrt -p $(basename $t) | head -1 | awk '{print $NF}') $(cat $t/comm)"; done; break; fi
  sleep 1
done
