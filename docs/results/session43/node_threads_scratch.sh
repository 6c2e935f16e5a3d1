#!/bin/bash
# per-thread CPU of the perception node during a bench run (10 s window)
sleep 35
pid=$(pgrep -f "perception_node\|fourds_ros.ros.perception_node" | head -1)
[ -z "$pid" ] && pid=$(pgrep -f -- "--ros-args" | head -1)
echo "node pid $pid: $(tr '\0' ' ' < /proc/$pid/cmdline | cut -c1-120)"
snap() { for t in /proc/$pid/task/*; do echo "$(basename $t) $(cat $t/comm | tr ' ' _) $(awk '{print $14+$15}' $t/stat)"; done; }
snap > /tmp/s43/t0; sleep 10; snap > /tmp/s43/t1
join <(sort /tmp/s43/t0) <(sort /tmp/s43/t1) | awk '{d=$5-$3; if (d>0) printf "%s %s %.1f%%\n", $1, $2, d}' | sort -k3 -n -r | head -20
