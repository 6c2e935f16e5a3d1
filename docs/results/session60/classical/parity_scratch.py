"""Every output of the node's pipeline (defaults) on real recordings -> npz, or compared to one."""
import sys, glob, dataclasses
import numpy as np, cv2
from fourds_ros import rgbd
from fourds_ros.bench.node import node_pipeline

def flatten(prefix, obj, out):
    if obj is None:
        return
    if isinstance(obj, np.ndarray) or np.isscalar(obj):
        out.setdefault(prefix, []).append(np.asarray(obj).ravel().astype(np.float64) if np.asarray(obj).dtype != bool else np.asarray(obj).ravel().astype(np.float64))
    elif dataclasses.is_dataclass(obj):
        for f in dataclasses.fields(obj):
            flatten(prefix + "." + f.name, getattr(obj, f.name), out)

def run(name, images, k):
    pipe, _ = node_pipeline({})
    out = {}
    for i, im in enumerate(images):
        clip, _ = pipe.add_frame(im, i * 33_333_333, "camera_optical", k)
        if clip is None:
            continue
        res = pipe.process(clip)
        for fr in res.frames:
            for f in ("depth", "tracks", "pose"):
                flatten(f"{name}.{f}", getattr(fr, f), out)
    st = pipe.status()
    out[f"{name}.counters"] = [np.array([v for kk, v in sorted(st.items()) if isinstance(v, (int, float)) and not kk.endswith(("_ms", "_s", "_hz"))], np.float64)]
    return {kk: np.concatenate(v) for kk, v in out.items()}

def recordings():
    tum = rgbd.read_tum("../shared/data/tum_fr1_rpy_f000-079")
    ti = [tum.rgb(i) for i in range(len(tum))]
    yield "tum", ti, tum.intrinsics
    yield "tum_s3", ti[::3], tum.intrinsics
    yield "tum_back", ti[::-1], tum.intrinsics
    h = rgbd.read_hololens("../shared/data/hololens_dvmvs_000_f00305-00334")
    hi = [h.rgb(i) for i in range(len(h))]
    yield "holo", hi, h.intrinsics
    yield "holo_back", hi[::-1], h.intrinsics
    kt = rgbd.read_7scenes("../shared/data/7scenes_redkitchen_f000-299")
    yield "kitchen", [kt.rgb(i) for i in range(0, 120)], kt.intrinsics
    paths = sorted(glob.glob("../shared/data/badja_camel_dog_bear/JPEGImages/480p/camel/*.jpg"))
    imgs = [cv2.cvtColor(cv2.imread(p), cv2.COLOR_BGR2RGB) for p in paths]
    h_, w_ = imgs[0].shape[:2]
    kk = np.array([[w_, 0, w_ / 2], [0, w_, h_ / 2], [0, 0, 1.0]])
    yield "camel", imgs, kk

if __name__ == "__main__":
    mode, path = sys.argv[1], sys.argv[2]
    allout = {}
    for name, images, k in recordings():
        allout.update(run(name, images, k))
    if mode == "save":
        np.savez_compressed(path, **allout)
        print("saved", len(allout))
    else:
        ref = np.load(path)
        bad = 0
        for kk in sorted(set(ref.files) | set(allout)):
            a, b = ref.get(kk) if kk in ref.files else None, allout.get(kk)
            if a is None or b is None or a.shape != b.shape:
                print("SHAPE", kk, None if a is None else a.shape, None if b is None else b.shape); bad += 1; continue
            same = np.array_equal(a, b, equal_nan=True)
            if not same:
                bad += 1
                d = np.nanmax(np.abs(a - b)) if np.isfinite(a).any() else np.nan
                print("DIFF", kk, d)
        print("identical" if not bad else f"{bad} differ", len(allout))
