"""Scratch (session 45): a copy of the shipped model at another input size R x R (the encoder
interpolates its position embedding itself; the depth head's queries are interpolated here).
    python resize_model_scratch.py R OUT_DIR"""
import json
import shutil
import sys

import torch.nn.functional as F
from safetensors.torch import load_file, save_file

from fourds_ros.model.default import default_model_dir

size, out = int(sys.argv[1]), sys.argv[2]
shutil.copytree(default_model_dir(), out, dirs_exist_ok=True)
config = json.load(open(f"{out}/config.json"))
config["image_size"], config["posenc_grid"] = [size, size], [4, 8, 8]  # the trained grid: 8x128x128, 2x16x16
json.dump(config, open(f"{out}/config.json", "w"), indent=2)
state = load_file(f"{out}/model.safetensors")
query = state["heads.depth.readout.query"]  # (4 * 16 * 16, C): decoding patches 2x8x8 of 8x128x128
grid = query.float().reshape(4, 16, 16, -1).permute(3, 0, 1, 2)[None]
grid = F.interpolate(grid, size=(4, size // 8, size // 8), mode="trilinear", align_corners=False)
state["heads.depth.readout.query"] = grid[0].permute(1, 2, 3, 0).reshape(-1, query.shape[1]).to(query.dtype).contiguous()
save_file(state, f"{out}/model.safetensors", metadata={"format": "pt"})
