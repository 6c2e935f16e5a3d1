"""Scratch (session 45): `fourds-ros eval` with the tracks' LK window, LK levels, template half size and search radius changed (the pose's corners keep theirs): python lk_window_eval_scratch.py WINDOW LEVELS HALF SEARCH -- eval ARGS..."""
import sys
import fourds_ros.perception.track_refine as tr
win, levels, half, search = (int(x) for x in sys.argv[1:5])
orig = tr.lk_step
def lk_step(previous, image, uv, window=tr.LK_WINDOW, levels_=tr.LK_LEVELS, *a, **kw):
    return orig(previous, image, uv, win, levels, *a, **kw)
tr.lk_step = lk_step
init = tr.TemplateRefiner.__init__
def new_init(self, half_size=10, search_radius=12, *a, **kw):
    init(self, half, search, *a, **kw)
tr.TemplateRefiner.__init__ = new_init
from fourds_ros.cli import main
sys.exit(main(sys.argv[6:]))
