"""Rule 69 / 69a's table from the scoring runs' JSON lines (score.py's output, one file per tree)."""
import json
import math
import sys
from pathlib import Path

HERE = Path(__file__).parent
ROWS = [("tum_s1", "TUM fr1/rpy 30 Hz", "validation"), ("tum_s2", "TUM fr1/rpy 15 Hz", "validation"),
        ("tum_s3", "TUM fr1/rpy 10 Hz", "validation"), ("tum_back", "TUM fr1/rpy backwards", "validation"),
        ("holo", "HoloLens walk", "train"), ("holo_back", "HoloLens walk backwards", "train images"),
        ("kitchen", "7-Scenes kitchen", "train")]


def load(tree):
    out = {}
    for line in (HERE / f"{tree}.jsonl").read_text().splitlines():
        if line.startswith("{"):
            d = json.loads(line)
            runs = d["runs"]
            out[Path(d["bag"]).name] = (sum(r["ate"] for r in runs) / len(runs), sum(r["rot"] for r in runs) / len(runs))
    return out


shipped = load("shipped")  # session 59 rule69/shipped.jsonl: the same pose code
for tree in sys.argv[1:]:
    cand = load(tree)
    print(f"\n{tree}: mean of 5 runs (untouched + 4 perturbed by 1e-6), each the mean of 6 starts; ATE m / rotation deg a frame\n")
    print("| recording | role | shipped | candidate | ratio ATE | ratio rotation |")
    print("| --- | --- | --- | --- | --- | --- |")
    val = []
    for key, name, role in ROWS:
        if key not in cand:
            continue
        (sa, sr), (ca, cr) = shipped[key], cand[key]
        print(f"| {name} | {role} | {sa:.4f} / {sr:.3f} | {ca:.4f} / {cr:.3f} | {ca / sa:.3f} | {cr / sr:.3f} |")
        if role == "validation":
            val.append((ca / sa, sr, cr))
    if val:
        geo = math.exp(sum(math.log(v[0]) for v in val) / len(val))
        rot = sum(v[2] for v in val) / sum(v[1] for v in val)
        print(f"\nvalidation: ATE geometric mean ratio {geo:.3f}; rotation, mean over the rows {rot:.3f}")
