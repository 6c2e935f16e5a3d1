"""Session 57, exploration (no rule). Run: python rotation_sources_scratch.py BAG (a `fourds-ros bag convert` of a
labelled recording), then python rotation_steps_scratch.py BAG /tmp/s57/rot/rec_<bag>.npz.
Where the per-frame rotation error of the pose comes from at 15 Hz (TUM fr1/rpy, validation).
Wraps pipeline.clip_pose to record each clip's inputs, then compares against ground truth:
final (fused+smoothed), raw PnP (geo), Kabsch on bearings (depth-free), essential matrix."""
import sys
import numpy as np
import cv2
sys.path.insert(0, "/work/main")
import fourds_ros.perception.pipeline as P
from fourds_ros.evaluation.bag import read_bag
from fourds_ros.evaluation.offline import run_offline
from fourds_ros.perception import PerceptionSettings

bag_path = sys.argv[1]
rec = []
orig = P.clip_pose
def wrapped(outputs, k_model, mode="fused", usable=None, track_xy=None, **kw):
    out = orig(outputs, k_model, mode, usable, track_xy=track_xy, **kw)
    xy = outputs["track_xy"][0] if track_xy is None else track_xy
    rec.append(dict(stamps=list(kw.get("stamps_ns")), xy=np.array(xy), vis=np.array(outputs["track_visibility"][0]),
                    usable=None if usable is None else np.array(usable), k=np.array(k_model),
                    depth0=np.array(outputs["depth"][0, 0]), final=np.array(out[0]),
                    geo=None if out[3] is None else (np.array(out[3].rotation), np.array(out[3].valid), np.array(out[3].still)),
                    head=np.array(outputs["pose_rotation"][0])))
    return out
P.clip_pose = wrapped
bag = read_bag(bag_path)
run_offline(bag, "/work/main/models/fourds_default", "onnxruntime", PerceptionSettings())
arrays = {}  # one .npz of plain arrays (no pickles): "<clip>/<name>"
for i, c in enumerate(rec):
    for name, value in c.items():
        if name == "geo":
            if value is not None:
                arrays[f"{i}/geo_rotation"] = value[0]
        elif value is not None:
            arrays[f"{i}/{name}"] = np.asarray(value)
np.savez("/tmp/s57/rot/rec_%s.npz" % bag_path.rstrip("/").split("/")[-1], **arrays)
gt = bag.gt_pose

def ang(R):
    return np.degrees(np.arccos(np.clip((np.trace(R) - 1) / 2, -1, 1)))

def kabsch(a, b):  # R with b ~ R a (rows are vectors)
    h = a.T @ b
    u, _, vt = np.linalg.svd(h)
    d = np.sign(np.linalg.det(vt.T @ u.T))
    return vt.T @ np.diag([1, 1, d]) @ u.T

rows = {k: [] for k in ("final", "geo", "head", "kabsch", "essential")}
steps = {k: [] for k in rows}
for c in rec:
    st = c["stamps"]
    if not all(s in gt for s in st):
        continue
    k = c["k"]; kinv = np.linalg.inv(k)
    T = len(st)
    gts = [np.linalg.inv(gt[st[0]]) @ gt[s] for s in st]  # first_from_t
    est = {"final": c["final"], "head": c["head"]}
    if c["geo"] is not None:
        est["geo"] = c["geo"][0]
    kab, ess = [np.eye(3)], [np.eye(3)]
    for t in range(1, T):
        ok = (c["vis"][:, 0] > 0.5) & (c["vis"][:, t] > 0.5)
        if c["usable"] is not None:
            ok &= c["usable"]
        p0 = c["xy"][ok, 0]; pt = c["xy"][ok, t]
        b0 = (kinv @ np.c_[p0, np.ones(len(p0))].T).T; b0 /= np.linalg.norm(b0, axis=1, keepdims=True)
        bt = (kinv @ np.c_[pt, np.ones(len(pt))].T).T; bt /= np.linalg.norm(bt, axis=1, keepdims=True)
        # first_from_t: a point in camera t, X0 = R Xt  -> b0 ~ R bt
        kab.append(kabsch(bt, b0) if len(p0) >= 3 else np.eye(3))
        R = np.eye(3)
        if len(p0) >= 8:
            E, m = cv2.findEssentialMat(pt, p0, k, cv2.RANSAC, 0.999, 0.5)
            if E is not None and E.shape == (3, 3):
                _, Rr, tr, _ = cv2.recoverPose(E, pt, p0, k, mask=m)
                R = Rr  # maps camera t points into camera 0: X0 = R Xt + t
        ess.append(R)
    est["kabsch"] = np.array(kab); est["essential"] = np.array(ess)
    for name, R in est.items():
        for t in range(1, T):
            rows[name].append(ang(R[t].T @ gts[t][:3, :3]))
            steps[name].append(ang((R[t - 1].T @ R[t]).T @ (gts[t - 1][:3, :3].T @ gts[t][:3, :3])))
for name in rows:
    if rows[name]:
        print(f"{name:10s} from-first err mean {np.mean(rows[name]):.2f} deg, frame-step err mean {np.mean(steps[name]):.2f} deg, n={len(rows[name])}")
