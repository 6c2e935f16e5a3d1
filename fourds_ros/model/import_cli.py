"""fourds-ros import-official IN.npz OUT_DIR"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from .checkpoint import CheckpointError
from .fourds import count_parameters
from .official import import_official


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="fourds-ros import-official",
        description="Convert an official 4DS checkpoint (scaling4d_dist_b.npz, scaling4d_e.npz, "
        "scaling4d_dist_b_depth.npz) into a fourds_ros model directory.",
    )
    parser.add_argument("npz", help="official .npz checkpoint")
    parser.add_argument("out_dir", help="model directory to write (config.json + model.safetensors)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    if Path(args.out_dir).exists() and not Path(args.out_dir).is_dir():  # said before the conversion
        print(f"import-official: {args.out_dir} is a file, not a model directory", file=sys.stderr)
        return 1
    try:
        model = import_official(args.npz, args.out_dir)
    except (CheckpointError, OSError) as e:
        print(f"import-official: {e}", file=sys.stderr)
        return 1
    cfg = model.config
    print(
        f"wrote {args.out_dir}: 4DS-{cfg.size} {cfg.num_frames}x{cfg.image_size[0]}x{cfg.image_size[1]}, "
        f"heads: {', '.join(cfg.heads) or 'none'}, {count_parameters(model):,} parameters"
    )
    return 0
