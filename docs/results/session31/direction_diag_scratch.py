"""Scratch: per clip, why the epipolar direction was taken or refused, against the ground truth."""
import sys, json
import numpy as np, cv2
sys.path.insert(0, "/work/main/tools")
from pose_error_budget import record_clips, ground_truth_motion
from fourds_ros.evaluation.bag import read_bag
from fourds_ros.evaluation.eval_cli import resolve_model
from fourds_ros.engine import create_engine
from fourds_ros.perception import pipeline as pl, epipolar as ep
from fourds_ros.perception.settings import PerceptionSettings

bag = read_bag(sys.argv[1]); starts = int(sys.argv[2])
engine = create_engine(resolve_model(None), "onnxruntime")
settings = PerceptionSettings.from_params({})
log = []
orig = pl.PerceptionPipeline._epipolar
def wrapped(self, rotation_last, translation, geo, frames, unseen, images):
    rec = {"stamps": [f.stamp_ns for f in frames], "still": bool(geo.still[-1]), "rot_only": bool(geo.rotation_only[-1]),
           "unseen": bool(unseen.any()), "t_in": translation[-1].tolist()}
    if not rec["unseen"]:
        keep = self._off_robot_pixels(frames[0].rgb.shape[:2])
        x0, x1 = ep.follow_corners(images, self.settings.pose.epipolar_corners, keep)
        rec["n"] = len(x0)
        k = self._input_k(frames[0])
        if len(x0) >= ep.MIN_INLIERS:
            E, inl = cv2.findEssentialMat(x0, x1, k, method=cv2.USAC_MAGSAC, prob=0.999, threshold=ep.RANSAC_PX)
            if E is not None and E.shape == (3, 3):
                _, r, t, mask = cv2.recoverPose(E, x0, x1, k, mask=inl)
                used = mask.ravel() > 0
                rec["inliers"] = int(used.sum())
                der = (k @ r @ np.linalg.inv(k) @ np.c_[x0[used], np.ones(used.sum())].T).T
                rec["parallax"] = float(np.median(np.linalg.norm(x1[used] - der[:, :2] / der[:, 2:], axis=1))) if used.any() else 0
                rec["n_essential_inliers"] = int((inl.ravel() > 0).sum()); rec["rot_dis"] = float(np.degrees(np.linalg.norm(cv2.Rodrigues(r @ rotation_last)[0])))
                c = -r.T @ t.ravel(); rec["ep_dir"] = (c / np.linalg.norm(c)).tolist()
            # raw parallax of all followed corners (no rotation undone)
            rec["flow_med"] = float(np.median(np.linalg.norm(x1 - x0, axis=1)))
    out = orig(self, rotation_last, translation, geo, frames, unseen, images)
    rec["taken"] = not np.allclose(out, translation)
    rec["t_out"] = out[-1].tolist()
    log.append(rec)
    return out
pl.PerceptionPipeline._epipolar = wrapped
rows = []
for s in range(starts):
    log.clear()
    record_clips(bag, engine, settings, s)
    for rec in log:
        st = rec["stamps"]
        if all(x in bag.gt_pose for x in st):
            _, gt_t = ground_truth_motion(bag.gt_pose, st)
            g = gt_t[-1]; rec["gt_size"] = float(np.linalg.norm(g)); gd = g / max(np.linalg.norm(g), 1e-12)
            ti = np.array(rec["t_in"]); rec["model_size"] = float(np.linalg.norm(ti))
            rec["model_dir_err"] = float(np.degrees(np.arccos(np.clip(ti @ gd / max(np.linalg.norm(ti), 1e-12), -1, 1))))
            if "ep_dir" in rec:
                rec["ep_dir_err"] = float(np.degrees(np.arccos(np.clip(np.array(rec["ep_dir"]) @ gd, -1, 1))))
        rec["start"] = s
        rows.append(dict(rec))
json.dump(rows, open(sys.argv[3], "w"), indent=0)
for r in rows:
    print(r["start"], "taken" if r["taken"] else "----", "still" if r["still"] else "", "rot" if r["rot_only"] else "",
          "n=%s inl=%s par=%.2f rd=%.1f flow=%.1f" % (r.get("n"), r.get("inliers"), r.get("parallax", -1), r.get("rot_dis", -1), r.get("flow_med", -1)),
          "gt=%.3f model=%.3f mdir=%.0f epdir=%s" % (r.get("gt_size", -1), r.get("model_size", -1), r.get("model_dir_err", -1),
          "%.0f" % r["ep_dir_err"] if "ep_dir_err" in r else "-"))
