"""Exploration (session 48): depth averaged over the clip and its mirror image (test-time flip).

Runs `fourds-ros eval BAG --offline` with the engine wrapped: a second engine call on the clip
flipped left-right, its depth flipped back and averaged with the first's (geometric mean); the
tracks and pose outputs are the first call's. Usage: python flip_tta_scratch.py MODE BAG OUT
(MODE: plain | flip)."""
import sys

import numpy as np

import fourds_ros.engine as engine_pkg
from fourds_ros import cli

mode, bag, out = sys.argv[1:4]
real_create = engine_pkg.create_engine


class FlipAveraged:
    def __init__(self, engine):
        self._engine = engine

    def __getattr__(self, name):
        return getattr(self._engine, name)

    def __call__(self, inputs):
        out = self._engine(inputs)
        flipped = dict(inputs)
        flipped["video"] = np.ascontiguousarray(inputs["video"][:, :, :, ::-1])
        mirror = self._engine(flipped)
        out = dict(out)
        a, b = out["depth"], mirror["depth"][..., ::-1]
        out["depth"] = np.sqrt(np.clip(a, 1e-6, None) * np.clip(b, 1e-6, None)).astype(a.dtype)
        return out


def create(*args, **kwargs):
    e = real_create(*args, **kwargs)
    return FlipAveraged(e) if mode == "flip" else e


engine_pkg.create_engine = create
sys.exit(cli.main(["eval", bag, "--offline", "--model", "models/fourds_default", "--out", out]))
