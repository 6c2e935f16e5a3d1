"""Real data: per clip, the ground-truth camera travel vs the published travel, with
pose_epipolar_hold_unmeasured on (default) and off."""
import sys, numpy as np
sys.path.insert(0,sys.argv[3])
from fourds_ros.evaluation.bag import read_bag, CAMERA_FRAME
from fourds_ros.perception import PerceptionPipeline, PerceptionSettings
from fourds_ros.perception.pipeline import model_engine
bag=read_bag(sys.argv[1], max_frames=int(sys.argv[2]))
for hold in (True,):
    import dataclasses; s0_=PerceptionSettings(); s=dataclasses.replace(s0_, pose=dataclasses.replace(s0_.pose, epipolar_hold_unmeasured=hold))
    eng=model_engine(s,'/work/main/models/fourds_default','torch'); p=PerceptionPipeline(eng,s)
    rows=[]; est={}
    for st in bag.stamps:
        clip,_=p.add_frame(bag.images[st],st,CAMERA_FRAME,bag.intrinsics(st))
        if clip is None: continue
        held0=p.pose_epipolar_held; un0=getattr(p,'pose_epipolar_unrefuted',0)
        r=p.process(clip)
        for f in r.frames: est[f.stamp_ns]=f.pose.odom_from_camera
        s0,s1=clip.frames[0].stamp_ns, clip.frames[-1].stamp_ns
        g=np.linalg.norm(bag.gt_pose[s1][:3,3]-bag.gt_pose[s0][:3,3])
        e=np.linalg.norm(est[s1][:3,3]-est[s0][:3,3]) if s0 in est else float('nan')
        rows.append((p.pose_epipolar_held>held0, g, e, getattr(p,'pose_epipolar_unrefuted',0)>un0))
    print(f"hold_unmeasured={hold}")
    for i,(h,g,e,u) in enumerate(rows): print(f"  clip {i:2d} held {int(h)} unrefuted {int(u)} gt travel {g*100:5.1f} cm  published {e*100:5.1f} cm")
    G=np.array([r[1] for r in rows]); E=np.array([r[2] for r in rows]); Hh=np.array([r[0] for r in rows])
    print(f"  held clips {Hh.sum()}/{len(rows)}: gt travel in them {G[Hh].sum()*100:.1f} cm, published {np.nansum(E[Hh])*100:.1f} cm")
