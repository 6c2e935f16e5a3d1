#!/usr/bin/env bash
# Exploration (session 48): the host's TLB shootdowns, function-call interrupts and page faults per
# second while a command runs. Usage: irq_sampler_scratch.sh OUTFILE COMMAND...
out=$1; shift
snap() { awk '/TLB:|CAL:|RES:/ {print $1, $2 + $3}' /proc/interrupts | tr '\n' ' '; awk '/^pgfault|^pgmajfault/ {printf "%s %s ", $1, $2}' /proc/vmstat; echo; }
( while true; do echo "$(date +%s.%N) $(snap)"; sleep 1; done ) > "$out" &
sampler=$!
"$@"
rc=$?
kill $sampler
exit $rc
