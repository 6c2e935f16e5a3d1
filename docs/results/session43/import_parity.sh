#!/bin/bash
# `bag import` against `bag convert` on all 80 TUM fr1/rpy frames (session 43): the frames written as a camera
# driver records them (test/test_bag_import.py's write_driver_bag), imported, and both bags scored offline.
# bash docs/results/session43/import_parity.sh OUT   (repo root; ../shared/data beside it)
set -e
export ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST AMENT_PREFIX_PATH=$PWD/.venv
OUT=$1; mkdir -p "$OUT"
.venv/bin/python -c "
import sys; sys.path.insert(0, '.')
from pathlib import Path
from test.test_bag_import import TUM, write_driver_bag
from fourds_ros.rgbd import tum_frames
write_driver_bag(Path('$OUT/driver'), [f for f in tum_frames(TUM) if f.depth_path is not None and f.camera_to_world is not None])"
.venv/bin/fourds-ros bag import "$OUT/driver" "$OUT/imported" --image-topic /camera/color/image_raw \
    --depth-topic /camera/aligned_depth_to_color/image_raw --world-frame world
.venv/bin/fourds-ros bag convert --format tum ../shared/data/tum_fr1_rpy_f000-079 "$OUT/converted"
for b in imported converted; do .venv/bin/fourds-ros eval "$OUT/$b" --offline --out "$OUT/report_$b" > /dev/null; done
.venv/bin/python -c "
import json
for b in ('imported', 'converted'):
    d = json.load(open('$OUT/report_' + b + '/report.json'))
    print(b, 'depth AbsRel', round(d['depth']['abs_rel'], 5), 'metric', round(d['depth']['metric']['abs_rel'], 4),
          'AJ', round(d['tracks']['aj'], 4))"
