"""Average two model directories in weight space (WiSE-FT: Wortsman et al., 2022, "Robust
fine-tuning of zero-shot models").

python -m training.average_checkpoints START FINETUNED --alpha 0.5 --out DIR

Every weight becomes (1 - alpha) x START + alpha x FINETUNED. Why: a model fine-tuned from START
gains on what it was tuned for and can lose on data neither saw; the average of the two keeps much
of the gain and much of START's robustness. That holds only where FINETUNED was trained from START
(the two are then in one basin), so both must have one architecture (config.json), and the result
carries START's config. The output is float32 (`training.convert_checkpoint` makes a float16 copy).
"""

from __future__ import annotations

import argparse
import sys

import torch

from fourds_ros.model import CheckpointError, load_checkpoint, save_checkpoint
from fourds_ros.model.fourds import FourDS


def average_models(start: FourDS, finetuned: FourDS, alpha: float) -> FourDS:
    """start's weights moved alpha of the way to finetuned's (float32), in start (returned)."""
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    if start.config != finetuned.config:
        raise CheckpointError("the two models have different configs: only a model fine-tuned from the other "
                              "can be averaged with it")
    theirs = finetuned.state_dict()
    with torch.no_grad():
        for name, weight in start.state_dict().items():
            if weight.is_floating_point():
                weight.lerp_(theirs[name].to(weight.dtype), alpha)
    return start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.average_checkpoints", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("start", help="the model the other was fine-tuned from")
    parser.add_argument("finetuned")
    parser.add_argument("--alpha", type=float, default=0.5, help="share of the fine-tuned weights (0: start, 1: it)")
    parser.add_argument("--out", required=True, help="output model dir")
    args = parser.parse_args(argv)
    averaged = f"{1 - args.alpha:g} x {args.start} + {args.alpha:g} x {args.finetuned}"
    try:
        model = average_models(load_checkpoint(args.start), load_checkpoint(args.finetuned), args.alpha)
        out = save_checkpoint(model, args.out, metadata={"averaged": averaged})
    except (ValueError, OSError) as e:  # CheckpointError included; OSError: an --out it cannot write
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"wrote {out}: {averaged}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
