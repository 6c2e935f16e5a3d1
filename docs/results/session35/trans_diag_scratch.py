import sys, numpy as np, cv2
import fourds_ros.perception.pipeline as pl
from fourds_ros.evaluation import eval_cli
orig = pl.clip_pose
log = []
def wrapped(outputs, k_model, mode="fused", *a, **kw):
    r, t, lv, geo = orig(outputs, k_model, mode, *a, **kw)
    if geo is not None:
        ht = outputs["pose_translation"][0]
        log.append(dict(out_cm=np.round(100*np.linalg.norm(t, axis=1),1).tolist(), head_cm=np.round(100*np.linalg.norm(ht,axis=1),1).tolist(),
                        geo_cm=np.round(100*np.linalg.norm(geo.translation,axis=1),1).tolist(), rot_only=geo.rotation_only.astype(int).tolist(), valid=geo.valid.astype(int).tolist(),
                        tvar=np.round(np.sqrt(geo.variance[:,1])*100,1).tolist(), hvar=np.round(np.sqrt(np.exp(outputs["pose_log_variance"][0][:,1]))*100,1).tolist()))
    return r, t, lv, geo
pl.clip_pose = wrapped
eval_cli.main([sys.argv[1], "--offline", "--out", sys.argv[2], *sys.argv[3:]])
for r in log:
    for k,v in r.items(): print(k, v)
    print()
