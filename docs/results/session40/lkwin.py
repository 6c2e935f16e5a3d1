import os
from fourds_ros.perception import track_refine as trf
W = int(os.environ.get("LKW", "21")); L = int(os.environ.get("LKL", "3"))
d = list(trf.lk_step.__defaults__)  # window, levels, max_residual, match_exposure, guess
d[0], d[1] = W, L
trf.lk_step.__defaults__ = tuple(d)
