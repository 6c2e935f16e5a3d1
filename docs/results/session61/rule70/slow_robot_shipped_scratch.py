"""PerceptionPipeline._epipolar on rendered views of a box room: camera driving forward at a few speeds
(30 Hz, 8-frame clip), solved motion exact. Does the clip keep its translation?"""
import sys; sys.path.insert(0,'/tmp/s61/rule/shipped'); sys.path.insert(1,'/tmp/s61/pose')
from render import *
from types import SimpleNamespace
from fourds_ros.perception.pipeline import PerceptionPipeline
from fourds_ros.perception.settings import PerceptionSettings
from fourds_ros.perception.pose_geometry import GeometryPose
s=PerceptionSettings()
for speed in [float(a) for a in sys.argv[1:]]:
  for direction,name in [((0,0,1),"forward"),((1,0,0),"sideways")]:
    step=speed/30*np.array(direction,float)
    views=[];rel=[]
    for t in range(8):
        M=np.eye(4); M[:3,3]=step*t; rel.append(M)
        img,_=render(M); views.append(img)
    R=np.tile(np.eye(3),(8,1,1)); tr=np.stack([m[:3,3] for m in rel])
    fake=SimpleNamespace(settings=s, pose_epipolar_skipped=0, pose_epipolar_guided=0, pose_epipolar_clips=0,
        pose_epipolar_stepwise=0, pose_epipolar_held=0, pose_step_rotations=0,
        _newer_clip_waits=lambda: False, _off_robot_pixels=lambda hw: None,
        _input_k=lambda f: KC)
    geo=SimpleNamespace(still=np.zeros(8,bool))
    frames=[SimpleNamespace(rgb=np.zeros((HH,WW,3),np.uint8))]*8
    rot,tro=PerceptionPipeline._epipolar(fake,R,tr,geo,frames,np.zeros(8,bool),views)
    print(f"{name:8s} {speed:.2f} m/s: clip travel {np.linalg.norm(tr[-1])*100:.1f} cm -> after epipolar {np.linalg.norm(tro[-1])*100:.1f} cm, dir {np.round(tro[-1]/max(np.linalg.norm(tro[-1]),1e-12),3)}; clips {fake.pose_epipolar_clips} stepwise {fake.pose_epipolar_stepwise} held {fake.pose_epipolar_held}")
