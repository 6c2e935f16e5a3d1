"""Rule 48's score from anchor_rows.sh's output: python score_rule48.py OUT_DIR"""
import json
import sys
from pathlib import Path

d = Path(sys.argv[1])
ROLE = {"tum30": "validation", "tumback": "validation"}


def read(bag, arm):
    r = json.loads((d / bag / arm / "report.json").read_text())
    f = r
    return {"depth": f["depth"]["abs_rel"], "metric": f["depth"]["metric"]["abs_rel"], "aj": f["tracks"]["aj"],
            "ate6": r["pose_over_starts"]["fourds"]["ate_mean"], "orb6": r["pose_over_starts"]["orb_vo"]["ate_mean"]}


ok = True
print("| recording | role | depth AbsRel | metric AbsRel | AJ | ATE m, mean of 6 starts (ORB VO) |")
print("| --- | --- | --- | --- | --- | --- |")
for bag in ("tum30", "tumback", "kitchen", "kitchenback", "holo", "holoback"):
    if not (d / bag / "anchor8" / "report.json").exists():
        continue
    a, b = read(bag, "shipped"), read(bag, "anchor8")
    print(f"| {bag} | {ROLE.get(bag, 'train')} | {a['depth']:.4f} -> {b['depth']:.4f} | {a['metric']:.4f} -> {b['metric']:.4f} "
          f"| {a['aj']:.4f} -> {b['aj']:.4f} | {a['ate6']:.4f} -> {b['ate6']:.4f} ({a['orb6']:.4f}) |")
    if bag in ROLE:
        ok &= b["aj"] >= a["aj"] and b["ate6"] <= 1.03 * a["ate6"]
        ok &= abs(b["depth"] - a["depth"]) <= 0.001 and abs(b["metric"] - a["metric"]) <= 0.001
cost = d / "cost.json"
if cost.exists():
    rows = json.loads(cost.read_text())
    med = lambda v: sorted(v)[len(v) // 2 - (len(v) % 2 == 0)] if len(v) % 2 else sum(sorted(v)) / len(v)  # noqa: E731
    ship = [r["refine_ms_p50"] for r in rows if r["param"] == 0.0]
    cand = [r["refine_ms_p50"] for r in rows if r["param"] == 8.0]
    print(f"refine ms a clip: shipped {ship} -> anchor {cand}")
    ok &= med(cand) - med(ship) <= 5.0
print("conditions 1 and 3 (2 was met before the rows):", "PASSED" if ok else "FAILED")
