"""Rule 49's score from spin_rows.sh's JSON: python score_rule49.py DIR (markdown table and verdict)."""
import json
import sys
from pathlib import Path
from statistics import median

d = Path(sys.argv[1])
rows = {}
for f in sorted(d.glob("*_*_*/node.json")):
    variant, transport, rnd = f.parent.name.split("_")
    j = json.loads(f.read_text())
    rows[(int(rnd), transport, variant)] = j["rows"][0]
keys = ("clip_latency_ms_p50", "node_inference_ms", "node_adds_pct", "latency_ms_p50", "latency_ms_p95",
        "odometry_latency_ms_p50", "odometry_latency_ms_p95", "input_transport_ms", "described_pct_depth",
        "described_pct_tracks", "described_pct_odometry", "lost_before_callback", "node_cpu_cores")
print("| round | transport | variant | " + " | ".join(keys) + " |")
print("|" + " --- |" * (3 + len(keys)))
for (rnd, t, v), r in sorted(rows.items()):
    print(f"| {rnd} | {t} | {v} | " + " | ".join(f"{r[k]:.1f}" if isinstance(r[k], float) else str(r[k]) for k in keys) + " |")
ok, ratios = True, []
for t in ("raw", "jpeg"):
    med = {k: {v: median(rows[(n, t, v)][k] for n in (1, 2, 3)) for v in ("shipped", "candidate")}
           for k in ("latency_ms_p95", "input_transport_ms", "node_inference_ms", "node_adds_pct", "clip_latency_ms_p50")}
    ratios += [rows[(n, t, "candidate")]["clip_latency_ms_p50"] / rows[(n, t, "shipped")]["clip_latency_ms_p50"]
               for n in (1, 2, 3)]
    c3 = (med["latency_ms_p95"]["candidate"] <= 1.05 * med["latency_ms_p95"]["shipped"]
          and med["input_transport_ms"]["candidate"] <= med["input_transport_ms"]["shipped"] + 2)
    print(f"{t}: medians shipped -> candidate: " + "; ".join(f"{k} {m['shipped']:.1f} -> {m['candidate']:.1f}"
                                                             for k, m in med.items()) + f" (3: {c3})")
    ok &= c3
pooled = median(ratios)
print(f"1: pooled node clip ratio candidate/shipped, median of 6 pairs: {pooled:.3f} (<= 0.95: {pooled <= 0.95}); "
      f"pairs {[round(x, 3) for x in ratios]}")
ok &= pooled <= 0.95
bounds = all(r["described_pct_depth"] >= 95 and r["described_pct_tracks"] >= 95 and r["described_pct_odometry"] >= 95
             and r["lost_before_callback"] == 0 and r["latency_ms_p50"] <= 300 and r["latency_ms_p95"] <= 450
             and r["odometry_latency_ms_p50"] <= 300 and r["odometry_latency_ms_p95"] <= 450
             for (n, t, v), r in rows.items() if v == "candidate")
print(f"2: live bounds in every candidate row: {bounds}")
ok &= bounds
print("RULE 49:", "PASSED" if ok else "FAILED")
