import json, numpy as np, itertools
data = {b: json.load(open(f"/tmp/s31/diag_{b}.json")) for b in ("tum", "7scenes", "hololens")}
def decide(r, min_inl, min_frac, max_rd, skip_rot):
    if "ep_dir_err" not in r: return False
    if r["still"] or (skip_rot and r["rot_only"]): return False
    if r["inliers"] < min_inl or r["inliers"] / r["n"] < min_frac: return False
    if r["parallax"] < 1.0 or r["rot_dis"] > max_rd: return False
    return True
def score(b, *a):
    rows = [r for r in data[b] if "gt_size" in r and r["gt_size"] > 1e-3]
    err = [r["ep_dir_err"] if decide(r, *a) else r["model_dir_err"] for r in rows]
    taken = sum(decide(r, *a) for r in rows)
    return np.mean(err), np.median(err), taken, len(rows)
# sanity: shipped rule
for b in data:
    print(b, "shipped", score(b, 30, 0, 5, True), "model only", score(b, 10**9, 0, 5, True))
print()
for a in itertools.product([30], [0, 0.3, 0.5], [5, 10, 15], [True, False]):
    print(a, "  ".join("%s %.1f/%.1f %d/%d" % ((b,) + score(b, *a)) for b in data))
# direction error vs inlier fraction for clips with a solution
print()
for b in data:
    for r in data[b]:
        if "ep_dir_err" in r:
            pass
rows = [(b, r) for b in data for r in data[b] if "ep_dir_err" in r and "gt_size" in r]
rows.sort(key=lambda x: x[1]["inliers"] / x[1]["n"])
for b, r in rows[:40]:
    print(b, "n=%d inl=%d frac=%.2f rd=%.1f ep=%.0f model=%.0f rot=%d" % (r["n"], r["inliers"], r["inliers"]/r["n"], r["rot_dis"], r["ep_dir_err"], r["model_dir_err"], r["rot_only"]))
