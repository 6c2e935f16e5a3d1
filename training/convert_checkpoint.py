"""Re-save a model directory with its weights in another float type (shipping step).

python -m training.convert_checkpoint models/fourds_default --dtype float16
float16 halves the file (4DS-S: 95 MB -> 48 MB); loading casts back to float32.
"""

from __future__ import annotations

import argparse
import sys

import torch

from fourds_ros.model import load_checkpoint, save_checkpoint
from fourds_ros.model.checkpoint import read_metadata

DTYPES = {"float16": torch.float16, "bfloat16": torch.bfloat16, "float32": torch.float32}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.convert_checkpoint", description=__doc__)
    parser.add_argument("model_dir")
    parser.add_argument("--dtype", choices=sorted(DTYPES), default="float16")
    parser.add_argument("--out", help="output dir (default: in place)")
    args = parser.parse_args(argv)
    try:  # a missing or broken model (CheckpointError), or a cast that overflows: nothing written
        model = load_checkpoint(args.model_dir)
        # The run's own metadata (steps, fine-tuned blocks) stays: it was replaced by the dtype alone.
        metadata = {**read_metadata(args.model_dir), "stored_dtype": args.dtype}
        out = save_checkpoint(model, args.out or args.model_dir, metadata=metadata, dtype=DTYPES[args.dtype])
    except (ValueError, OSError) as exc:  # CheckpointError is a ValueError
        print(f"convert_checkpoint: {args.model_dir} not converted: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {out} with {args.dtype} weights")
    return 0


if __name__ == "__main__":
    sys.exit(main())
