set -e
out=/tmp/s46/malloc; mkdir -p $out
export ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST AMENT_PREFIX_PATH=$PWD/.venv
row() { # name envs...
  name=$1; shift
  env "$@" .venv/bin/fourds-ros bench node --transports raw --seconds 20 --steps --beside-seconds 0 --domain 84 --json-dir $out/tmp --markdown '' > $out/$name.log 2>&1
  mv $out/tmp/node.json $out/$name.json
}
for r in 1 2; do
  row ${r}_default X=1
  row ${r}_malloc MALLOC_MMAP_THRESHOLD_=268435456 MALLOC_TRIM_THRESHOLD_=268435456 MALLOC_TOP_PAD_=67108864
done
