"""Scratch (session 47): camel (BADJA, validation): the joints where the LK peer and the flow tracker differ
on PCK, per annotated frame (error px of each, the peer's visibility, both positions)."""
import numpy as np
from fourds_ros.evaluation.badja import model_tracker, find_clips
from fourds_ros.evaluation.datasets import load_badja
from fourds_ros.evaluation.peers import lk_tracks
from fourds_ros.model.default import default_model_dir
clip = [c for c in find_clips(["../shared/data/badja_camel_dog_bear"]) if c.name == "camel"][0]
b = load_badja(clip)
stamps = list(range(len(b["frames"])))
first = int(b["annotated"][0]); vis0 = b["visible"][0]
queries = {int(j): (first, *map(float, b["joints_xy"][0, j])) for j in np.flatnonzero(vis0)}
images = dict(enumerate(b["frames"]))
lk = lk_tracks(stamps, images, queries)
me = model_tracker(default_model_dir(), track_refinement="flow")(stamps, images, queries)
for a, f in enumerate(b["annotated"][1:9], 1):
    f = int(f)
    thr = 0.2 * np.sqrt(b["mask_area"][a])
    L, M = lk.tracks[f], me.tracks[f]
    gt = b["joints_xy"][a]
    rows = []
    for i, tid in enumerate(M["ids"]):
        if not (b["visible"][a][tid] and vis0[tid]):
            continue
        j = list(L["ids"]).index(tid)
        el, em = np.linalg.norm(L["uv"][j] - gt[tid]), np.linalg.norm(M["uv"][i] - gt[tid])
        if (el <= thr) != (em <= thr):
            rows.append((int(tid), round(el, 1), round(em, 1), bool(L["visible"][j]), np.round(L["uv"][j], 1).tolist(), np.round(M["uv"][i], 1).tolist()))
    print("frame", f, "thr", round(thr, 1), rows)
