"""Rule 47's score from hold_rows.sh's JSON: python score_rule47.py DIR"""
import json
import sys
from pathlib import Path
from statistics import median

d = Path(sys.argv[1])
rows = {}
for f in sorted(d.glob("*_*_*.json")):
    rnd, transport, hold = f.stem.split("_")
    j = json.loads(f.read_text())
    r = j["rows"][0]
    r["reference_ms"] = j["summary"]["pipeline"]["reference_ms"]
    rows[(int(rnd), transport, hold == "true")] = r
keys = ("reference_ms", "clip_latency_ms_p50", "node_inference_ms", "node_adds_pct", "latency_ms_p50", "latency_ms_p95",
        "odometry_latency_ms_p50", "odometry_latency_ms_p95", "described_pct_depth", "described_pct_tracks",
        "described_pct_odometry", "lost_before_callback", "node_cpu_cores")
print("| round | transport | hold | " + " | ".join(keys) + " |")
print("|" + " --- |" * (3 + len(keys)))
for (rnd, t, h), r in sorted(rows.items()):
    print(f"| {rnd} | {t} | {h} | " + " | ".join(f"{r[k]:.1f}" if isinstance(r[k], float) else str(r[k]) for k in keys) + " |")
ok = True
ratios = []
for t in ("raw", "jpeg"):
    adds = {h: median(rows[(n, t, h)]["node_adds_pct"] for n in (1, 2, 3)) for h in (False, True)}
    lat = {h: median(rows[(n, t, h)]["latency_ms_p50"] for n in (1, 2, 3)) for h in (False, True)}
    eng = {h: median(rows[(n, t, h)]["node_inference_ms"] for n in (1, 2, 3)) for h in (False, True)}
    ratios += [rows[(n, t, True)]["clip_latency_ms_p50"] / rows[(n, t, False)]["clip_latency_ms_p50"] for n in (1, 2, 3)]
    c1 = adds[True] < adds[False]
    c3 = lat[True] <= 1.05 * lat[False]
    print(f"{t}: node adds median {adds[False]:.1f} % -> {adds[True]:.1f} % ({c1}); depth latency p50 median "
          f"{lat[False]:.0f} -> {lat[True]:.0f} ms ({c3}); engine in node median {eng[False]:.1f} -> {eng[True]:.1f} ms")
    ok &= c1 and c3
pooled = median(ratios)
print(f"pooled node clip ratio with/without, median of 6 pairs: {pooled:.3f} (<= 0.95: {pooled <= 0.95}); pairs {[round(x, 3) for x in ratios]}")
ok &= pooled <= 0.95
bounds = all(r["described_pct_depth"] >= 95 and r["described_pct_tracks"] >= 95 and r["described_pct_odometry"] >= 95
             and r["lost_before_callback"] == 0 and r["latency_ms_p50"] <= 300 and r["latency_ms_p95"] <= 450
             and r["odometry_latency_ms_p50"] <= 300 and r["odometry_latency_ms_p95"] <= 450
             for (n, t, h), r in rows.items() if h)
print(f"live bounds in every hold row: {bounds}")
ok &= bounds
print("RULE 47:", "PASSED" if ok else "FAILED")
