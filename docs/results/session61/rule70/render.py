"""Ray-cast a textured box room (camera optical frame: x right, y down, z forward)."""
import numpy as np, cv2
HH,WW=480,640; KC=np.array([[525.,0,319.5],[0,525.,239.5],[0,0,1]])
rng=np.random.default_rng(3)
TEX=cv2.GaussianBlur((rng.random((1024,1024))*255).astype(np.float32),(0,0),1.5)
TEX=cv2.normalize(TEX,None,0,255,cv2.NORM_MINMAX)
# planes: (normal n, offset d) with n.x = d ; tangent axes for texture
PLANES=[(np.array([1.,0,0]),2.0,(1,2)),(np.array([1.,0,0]),-2.0,(1,2)),(np.array([0,1.,0]),1.0,(0,2)),
        (np.array([0,1.,0]),-1.5,(0,2)),(np.array([0,0,1.]),6.0,(0,1)),(np.array([0,0,1.]),-3.0,(0,1))]
# a few boxes (pillars) for depth variety: as extra planes limited in extent
def render(world_from_cam, scale_tex=80.0):
    ys,xs=np.mgrid[0:HH,0:WW].astype(float)
    rays=np.linalg.solve(KC,np.stack([xs.ravel(),ys.ravel(),np.ones(xs.size)]))  # 3,N cam
    R=world_from_cam[:3,:3]; o=world_from_cam[:3,3]
    d=R@rays
    best=np.full(d.shape[1],np.inf); val=np.zeros(d.shape[1]); depth=np.zeros(d.shape[1])
    for n,off,(a,b) in PLANES:
        den=n@d
        with np.errstate(divide='ignore',invalid='ignore'):
            s=(off-n@o)/den
        ok=(s>1e-6)&(s<best)
        p=o[:,None]+d*s
        u=(p[a]*scale_tex)%1024; v=(p[b]*scale_tex)%1024
        u=np.nan_to_num(u).astype(np.float32).reshape(HH,WW); v=np.nan_to_num(v).astype(np.float32).reshape(HH,WW)
        tv=cv2.remap(TEX,u,v,cv2.INTER_LINEAR,borderMode=cv2.BORDER_WRAP).ravel()
        val=np.where(ok,tv,val); best=np.where(ok,s,best)
    z=best*rays[2]
    return np.clip(val,0,255).reshape(HH,WW).astype(np.uint8), z.reshape(HH,WW)
