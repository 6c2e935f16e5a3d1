"""Differential fuzz of NodeHealth's publisher-following rules: an older revision's health.py against this checkout's
(session 72: written by helper H7, extended by H10 for the relay rule; run with follow_fuzz.sh).

Changed from /tmp/s72/h7/scratch/fuzz.py: frames carry their stamp (ns) in place of a delay, and a republisher
(derived_rep) copies its camera frame's stamp exactly (it had the camera's stamp plus its own jitter, and float
rounding); template rep_then_cam added (a relay heard before its camera); two versions, old and new."""
from __future__ import annotations

import json
import random
import sys
import time
from collections import defaultdict
from types import SimpleNamespace

import importlib.util
import os

import fourds_ros.perception.health as new_mod

# The rules to compare against: a health.py of another revision (follow_fuzz.sh writes it), loaded as a module of the
# package so that its relative imports resolve to this checkout's.
_spec = importlib.util.spec_from_file_location("fourds_ros.perception.health_old", os.environ["OLD_HEALTH"])
old_mod = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = old_mod  # dataclasses look their module up there
_spec.loader.exec_module(old_mod)

FAKE = SimpleNamespace(t=1000.0)
for m in (new_mod, old_mod):
    m.time = SimpleNamespace(monotonic=lambda: FAKE.t, time_ns=time.time_ns)

NODE0 = 1_700_000_000 * 10**9
HOUR = 3600.0
T_END = 30.0


def stream(rng, name, role, rate, start, end, jitter, delay, pauses=(), drop=0.0):
    """frames (t, writer, role, stamp ns, seq)"""
    out, k, t, seq = [], 0, start, 0
    period = 1.0 / rate
    while True:
        t = start + k * period
        if t >= end:
            break
        k += 1
        seq += 1
        if any(a <= t < b for a, b in pauses):
            continue
        if drop and rng.random() < drop:
            continue
        tj = t + rng.uniform(-jitter, jitter)
        out.append((tj, name, role, NODE0 + int((tj - delay) * 1e9), seq))
    return out


TEMPLATES = ["cam_then_bag", "bag_then_cam", "cam_then_rep", "indep_then_cam", "cam_then_live2",
             "cam_bag_simtime0", "bag_then_cam_simtime0", "three_cam_rep_bag", "three_bag_cam_rep",
             "three_bag_indep_cam", "cam_unsync_bag", "rep_then_cam"]
MODS = ["none", "cam_pause", "cam_restart", "cam_missed", "intr_stop", "intr_restart", "cam_stop"]


def rate_of(rng):
    # log-uniform 0.3..60 Hz, with some mass on common rates
    if rng.random() < 0.4:
        return rng.choice([0.5, 1.0, 2.0, 5.0, 10.0, 15.0, 30.0, 60.0])
    return 0.3 * (200 ** rng.random())


def derived_rep(rng, cam_frames, cam_rate, rep_rate, start, end, extra, jitter, name="rep"):
    """A republisher of the camera: every n-th camera frame, `extra` s later, the camera's stamp kept."""
    n = max(1, round(cam_rate / rep_rate))
    out, seq = [], 0
    for i, (t, _, _, stamp, _) in enumerate(sorted(cam_frames)):
        if i % n or not start <= t < end:
            continue
        seq += 1
        out.append((t + extra + rng.uniform(-jitter, jitter), name, "intruder", stamp, seq))
    return out


def make(rng, template, mod):
    cam_rate, int_rate = rate_of(rng), rate_of(rng)
    jitter = rng.choice([0.0, 0.002, 0.005, 0.02])
    cam_delay = HOUR if template == "cam_unsync_bag" else rng.uniform(0.005, 0.1)
    sim0 = "simtime0" in template
    cam_first = not template.startswith(("bag", "indep", "three_bag", "rep_then"))
    t_int = rng.uniform(0.5, 8.0)
    cam_start, int_start = (0.0, t_int) if cam_first else (t_int, 0.0)
    cam_end, int_end = T_END, T_END
    frames = []
    pauses, drop = (), 0.0
    cam_writers = [("cam", cam_start, cam_end)]
    if mod == "cam_pause":
        a = rng.uniform(max(cam_start, int_start) + 2, 20)
        pauses = ((a, a + rng.uniform(0.5, 8.0)),)
    elif mod == "cam_missed":
        drop = rng.uniform(0.02, 0.3)
    elif mod == "cam_restart":
        a = rng.uniform(max(cam_start, int_start) + 2, 20)
        gap = rng.uniform(0.05, 8.0)
        cam_writers = [("cam", cam_start, a), ("cam2", a + gap, cam_end)]
    elif mod == "cam_stop":
        cam_writers = [("cam", cam_start, rng.uniform(max(cam_start, int_start) + 2, 20))]
    cam_frames = []
    for name, s, e in cam_writers:
        cam_frames += stream(rng, name, "camera", cam_rate, s, e, jitter, cam_delay, pauses, drop)
    if template == "rep_then_cam":  # the camera runs from 0, its frames reach the node from t_int (matched later)
        cam_all = []
        for name, s, e in [("cam", 0.0, cam_writers[0][2])] + cam_writers[1:]:
            cam_all += stream(rng, name, "camera", cam_rate, s, e, jitter, cam_delay, pauses, drop)
        cam_frames = [f for f in cam_all if f[0] >= t_int]
        frames += derived_rep(rng, cam_all, cam_rate, min(int_rate, cam_rate), 0.0, T_END, rng.uniform(0.02, 0.5),
                              jitter)
    frames += cam_frames
    intruders = []  # (name, kind, rate, start offset)
    bag_delay = 2 * HOUR if template == "cam_unsync_bag" else HOUR
    if template in ("cam_then_bag", "bag_then_cam", "cam_bag_simtime0", "bag_then_cam_simtime0", "cam_unsync_bag"):
        intruders.append(("bag", "bag", int_rate, 0.0))
    elif template == "rep_then_cam":
        pass
    elif template == "cam_then_rep":
        intruders.append(("rep", "rep", min(int_rate, cam_rate), 0.0))
    elif template == "indep_then_cam":
        intruders.append(("indep", "indep", int_rate, 0.0))
    elif template == "cam_then_live2":
        intruders.append(("live2", "live2", int_rate, 0.0))
    elif template == "three_cam_rep_bag":
        intruders += [("rep", "rep", min(rate_of(rng), cam_rate), 0.0), ("bag", "bag", int_rate, rng.uniform(0, 3))]
    elif template == "three_bag_cam_rep":
        intruders += [("bag", "bag", int_rate, 0.0), ("rep", "rep", min(rate_of(rng), cam_rate), t_int + 1.0)]
    else:  # three_bag_indep_cam
        intruders += [("indep", "indep", min(rate_of(rng), cam_rate), 0.0), ("bag", "bag", int_rate, rng.uniform(0, 3))]
    for j, (name, kind, rate, offset) in enumerate(intruders):
        s = int_start + offset
        spans = [(name, s, int_end)]
        if mod == "intr_stop" and j == len(intruders) - 1:
            spans = [(name, s, rng.uniform(s + 2, 25))]
        elif mod == "intr_restart" and j == len(intruders) - 1:
            a = rng.uniform(s + 2, 22)
            spans = [(name, s, a), (name + "2", a + rng.uniform(0.05, 3), int_end)]
        for writer, a, b in spans:
            if kind == "rep":
                frames += derived_rep(rng, cam_frames, cam_rate, rate, a, b, rng.uniform(0.02, 0.5), jitter, writer)
            else:
                delay = {"bag": bag_delay, "indep": rng.uniform(0.0, 0.05), "live2": rng.uniform(0.005, 0.1)}[kind]
                frames += stream(rng, writer, "intruder", rate, a, b, jitter, delay)
    frames.sort()
    return dict(template=template, mod=mod, cam_rate=cam_rate, int_rate=int_rate, jitter=jitter, sim0=sim0,
                frames=frames)


def run(mod, sched):
    start = FAKE.t = 1000.0
    sim0 = sched["sim0"]
    h = mod.NodeHealth(lambda m: None, now_ns=(lambda: 0) if sim0 else (lambda: NODE0 + int((FAKE.t - start) * 1e9)))
    res = []
    for t, name, role, delay, seq in sched["frames"]:
        FAKE.t = start + t
        ok = h.frame_received(delay, name, seq)
        res.append((ok, h.errors[mod.IMAGE_PUBLISHERS_INTERLEAVED] > 0))
    return res


def score(sched, res):
    frames = sched["frames"]
    cam_t = [f[0] for f in frames if f[2] == "camera"]
    period = 1.0 / sched["cam_rate"]
    # the camera "running" at t: a camera frame within max(1 s, 2.5 periods) before, and one after
    import bisect
    cam_rej = int_taken = cam_n = int_run = 0
    first_confirm = None
    for (t, name, role, *_), (ok, confirmed) in zip(frames, res):
        if role == "camera":
            cam_n += 1
            cam_rej += not ok
        else:
            i = bisect.bisect_right(cam_t, t)
            running = confirmed and i > 0 and i < len(cam_t) and t - cam_t[i - 1] <= max(1.0, 2.5 * period)
            if running:
                int_run += 1
                int_taken += ok
    return cam_rej, cam_n, int_taken, int_run


def main(n, seed):
    rng = random.Random(seed)
    agg = defaultdict(lambda: defaultdict(int))
    worse = []
    for k in range(n):
        template, m = rng.choice(TEMPLATES), rng.choice(MODS)
        s = make(rng, template, m)
        scores = {name: score(s, run(mod, s)) for name, mod in (("old", old_mod), ("new", new_mod))}
        a = agg[(template, m)]
        a["n"] += 1
        a["cam_n"] += scores["old"][1]
        a["int_run"] += scores["old"][3]
        for name, sc in scores.items():
            a["cr_" + name] += sc[0]
            a["it_" + name] += sc[2]
            a["bad_" + name] += (sc[0] > 0.2 * max(sc[1], 1)) or (sc[2] > 0.2 * max(sc[3], 1) and sc[2] > 5)
        for name in ("new",):
            if sum(scores[name][::2]) > sum(scores["old"][::2]) + 5:
                a["worse_" + name] += 1
                worse.append(dict(k=k, who=name, template=template, mod=m, cam_rate=round(s["cam_rate"], 2),
                                  int_rate=round(s["int_rate"], 2), jitter=s["jitter"], **scores))
    return agg, worse


if __name__ == "__main__":
    n, seed = int(sys.argv[1]), int(sys.argv[2])
    agg, worse = main(n, seed)
    print("class | n | camera frames rejected old/new of N | intruder taken (camera running, confirmed) old/new of N"
          " | schedules >20% wrong old/new | new worse than old by > 5 frames")
    for key in sorted(agg):
        a = agg[key]
        print(f"{key[0]:20s} {key[1]:12s}|{a['n']:4d} | {a['cr_old']:6d} {a['cr_new']:6d} /{a['cam_n']:6d}"
              f" | {a['it_old']:6d} {a['it_new']:6d} /{a['int_run']:6d}"
              f" | {a['bad_old']:3d} {a['bad_new']:3d} | {a['worse_new']:3d}")
    tot = defaultdict(int)
    for a in agg.values():
        for k, v in a.items():
            tot[k] += v
    print(f"{'TOTAL':33s}|{tot['n']:4d} | {tot['cr_old']:6d} {tot['cr_new']:6d} /{tot['cam_n']:6d}"
          f" | {tot['it_old']:6d} {tot['it_new']:6d} /{tot['int_run']:6d} | {tot['bad_old']:3d} {tot['bad_new']:3d}"
          f" | {tot['worse_new']:3d}")
    json.dump(worse, open(os.path.join(os.environ.get("FUZZ_OUT", "/tmp"), f"worse_{seed}.json"), "w"), indent=0)
    print(len(worse), "schedules where new is worse than old by > 5 frames")
