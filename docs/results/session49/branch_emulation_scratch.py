"""Exploration (session 49): what a depth branch would give, emulated without new code.

A "depth branch" = the depth head reading its own fine-tuned copy of the encoder's top blocks,
while the tracks and pose heads read the shipped encoder unchanged. Emulated here by two
checkpoints run side by side on every clip: every output from BASE (the shipped model), except
`depth`, taken from DEPTH_FROM. Then `fourds-ros eval` as usual (torch backend: nothing is
exported or cached).

usage: python branch_emulation_scratch.py BASE_DIR DEPTH_FROM_DIR -- <fourds-ros eval args>
"""

import sys

import fourds_ros.engine.factory as factory
from fourds_ros.evaluation.eval_cli import main
from fourds_ros.model import load_checkpoint

base_dir, depth_dir = sys.argv[1], sys.argv[2]
rest = sys.argv[sys.argv.index("--") + 1:]


def composite(_model_dir):
    base, depth_model = load_checkpoint(base_dir), load_checkpoint(depth_dir)
    base_forward = base.forward

    def forward(video, query_points=None, **inputs):
        out = base_forward(video, query_points, **inputs)
        out["depth"] = depth_model(video, query_points, **inputs)["depth"]
        return out

    base.forward = forward
    return base


factory.load_checkpoint = composite
if "--backend" not in rest:
    rest += ["--backend", "torch"]
sys.exit(main(rest))
