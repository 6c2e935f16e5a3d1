"""Rule 50's score from zoom_rows.sh's reports: python score_rule50.py OUT_DIR"""
import json
import sys
from pathlib import Path

out = Path(sys.argv[1])


def read(bag, variant):
    r = json.loads((out / bag / variant / "report.json").read_text())
    return {"depth": r["depth"]["abs_rel"], "metric": r["depth"]["metric"]["abs_rel"], "aj": r["tracks"]["aj"],
            "ate": r["pose_over_starts"]["fourds"]["ate_mean"], "orb_ate": r["pose_over_starts"]["orb_vo"]["ate_mean"]}


ok = True
print("| recording | role | depth AbsRel shipped / zoom | metric AbsRel shipped / zoom | AJ shipped / zoom | ATE m shipped / zoom (ORB VO) |")
print("| --- | --- | --- | --- | --- | --- |")
for bag, role in (("tum30", "validation"), ("tumback", "validation"), ("kitchen", "train"), ("holo", "train")):
    s, z = read(bag, "shipped"), read(bag, "zoom")
    print(f"| {bag} | {role} | {s['depth']:.4f} / {z['depth']:.4f} | {s['metric']:.3f} / {z['metric']:.3f} | "
          f"{s['aj']:.4f} / {z['aj']:.4f} | {s['ate']:.4f} / {z['ate']:.4f} ({s['orb_ate']:.4f}) |")
    if role == "validation":
        c1 = z["metric"] <= 0.80 * s["metric"]
        c2 = z["depth"] <= s["depth"] + 0.001 and abs(z["aj"] - s["aj"]) < 1e-9 and z["ate"] <= 1.03 * s["ate"]
        print(f"  {bag}: 1 metric {z['metric'] / s['metric']:.3f}x ({c1}); 2 relative {z['depth'] - s['depth']:+.4f}, "
              f"AJ {z['aj'] - s['aj']:+.4f}, ATE {z['ate'] / s['ate']:.3f}x ({c2})")
        ok &= c1 and c2
print("RULE 50:", "PASSED" if ok else "FAILED")
