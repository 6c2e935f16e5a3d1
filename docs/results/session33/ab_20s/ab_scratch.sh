#!/bin/bash
cd /work/main
for i in 1 2; do
  for prof in "" none; do
    tag=${prof:-large}
    .venv/bin/fourds-ros bench node --transports raw --seconds 20 --steps --beside-seconds 0 --domain 65 --fastdds-profile "$prof" --json-dir /tmp/s33/ab_${tag}_$i --markdown '' > /tmp/s33/ab_${tag}_$i.log 2>&1
    grep "Live raw" /tmp/s33/ab_${tag}_$i.log | sed "s/^/$tag $i: /"
  done
done
echo AB_DONE
