"""Scratch: DIS-assisted LK steps in the flow refinement, BADJA (validation). python dis_exp.py VARIANT..."""
import json, sys, time
import numpy as np, cv2
import fourds_ros.perception.track_refine as tr
from fourds_ros.evaluation.badja import score_badja_folders, model_tracker

PRESET = cv2.DISOPTICAL_FLOW_PRESET_FAST
_dis = cv2.DISOpticalFlow_create(PRESET)
TIMES = []

def dis_flow(prev, img, scale):
    a, b = tr._as_uint8(prev), tr._as_uint8(img)
    t = time.perf_counter()
    if scale != 1.0:
        a = cv2.resize(a, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        b = cv2.resize(b, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    f = _dis.calc(a, b, None)
    TIMES.append(time.perf_counter() - t)
    return f

def sample(flow, uv, scale):
    m = np.asarray(uv, np.float32) * scale
    mx = m[:, 0].reshape(-1, 1); my = m[:, 1].reshape(-1, 1)
    fx = cv2.remap(flow[..., 0], mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE).ravel()
    fy = cv2.remap(flow[..., 1], mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE).ravel()
    return np.stack([fx, fy], 1).astype(np.float64) / scale

def lk_init(previous, image, uv, init, window=tr.LK_WINDOW, levels=tr.LK_LEVELS, max_residual=tr.LK_MAX_RESIDUAL):
    uv = np.asarray(uv, np.float64).reshape(-1, 2)
    ok = np.isfinite(uv).all(1) & np.isfinite(init).all(1)
    moved = uv.copy()
    if not ok.any():
        return moved, ok
    start = uv[ok].astype(np.float32).reshape(-1, 1, 2)
    guess = (uv[ok] + init[ok]).astype(np.float32).reshape(-1, 1, 2)
    end, status, residual = cv2.calcOpticalFlowPyrLK(tr._as_uint8(previous), tr._as_uint8(image), start, guess,
        winSize=(window, window), maxLevel=levels, criteria=tr._LK_CRITERIA, flags=cv2.OPTFLOW_USE_INITIAL_FLOW)
    end = end.reshape(-1, 2).astype(np.float64)
    h, w = image.shape[:2]
    good = (status.reshape(-1) == 1) & (residual.reshape(-1) < max_residual) & np.isfinite(end).all(1)
    good &= (end[:, 0] >= 0) & (end[:, 0] <= w - 1) & (end[:, 1] >= 0) & (end[:, 1] <= h - 1)
    rows = np.flatnonzero(ok)
    moved[rows[good]] = end[good]
    ok[rows[~good]] = False
    return moved, ok

ORIG = tr.lk_step

def variant_step(mode):
    scale = 1.0 if mode.endswith("full") else 0.5
    def step(previous, image, uv, match_exposure=False, **kw):
        if match_exposure:
            image = tr.match_exposure_of(image, previous)
        flow = dis_flow(previous, image, scale)
        uvf = np.asarray(uv, np.float64).reshape(-1, 2)
        init = np.full_like(uvf, np.nan)
        fin = np.isfinite(uvf).all(1)
        init[fin] = sample(flow, uvf[fin], scale)
        if mode.startswith("dis_init"):
            return lk_init(previous, image, uvf, init)
        moved, ok = ORIG(previous, image, uvf)
        lost = ~ok & fin
        h, w = image.shape[:2]
        cand = uvf + init
        inside = (cand[:, 0] >= 0) & (cand[:, 0] <= w - 1) & (cand[:, 1] >= 0) & (cand[:, 1] <= h - 1)
        take = lost & inside
        moved[take] = cand[take]
        ok = ok | take
        return moved, ok
    return step

def main():
    variants = sys.argv[1:]
    folders = ["/work/shared/data/davis_horsejump-high_badja", "/work/shared/data/badja_camel_dog_bear"]
    out = {}
    t0 = time.time()
    for v in variants:
        TIMES.clear()
        if v == "lk":
            res = score_badja_folders(folders, {"lk": None})["lk"]
        else:
            tr.lk_step = ORIG if v == "shipped" else variant_step(v)
            res = score_badja_folders(folders, {v: model_tracker("/work/main/models/fourds_default", "torch", track_refinement="flow")})[v]
            tr.lk_step = ORIG
        out[v] = {"mean": res["pck"], **{c: round(r["pck"], 4) for c, r in res["per_clip"].items()},
                  "dis_ms": 1000 * float(np.mean(TIMES)) if TIMES else None,
                  "counts": {c: r.get("tracker_counts") for c, r in res["per_clip"].items()}}
        print(v, round(res["pck"], 4), {c: round(r["pck"], 4) for c, r in res["per_clip"].items()},
              "dis ms/pair", out[v]["dis_ms"], f"{time.time()-t0:.0f}s", flush=True)
    json.dump(out, open(f"/tmp/s29/badja_{'_'.join(variants)}.json", "w"), indent=1)
main()
