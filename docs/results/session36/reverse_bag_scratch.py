"""Scratch (session 36): a recording played backwards, as a bag. Why: the pose head memorised the
motion of its training frames (HoloLens walk: head alone ATE 0.020 m, geometry alone 0.25, ORB VO
0.081), so the training rows say nothing about a walk it never saw (issue #17's table: unseen
frames of that walk, ATE 0.92 against ORB VO's 0.31). Played backwards, every image is one it
saw but every motion is new: a proxy for the unseen-frames acceptance recordings.
Run: python docs/results/session36/reverse_bag_scratch.py FORMAT SRC OUT [--stride N]"""
import argparse
import dataclasses

from fourds_ros.evaluation.bag import write_bag
from fourds_ros.evaluation.datasets import iter_dataset

p = argparse.ArgumentParser()
p.add_argument("format")
p.add_argument("src")
p.add_argument("out")
p.add_argument("--stride", type=int, default=1)
p.add_argument("--max-frames", type=int, default=None)
a = p.parse_args()
frames = list(iter_dataset(a.format, a.src, stride=a.stride, max_frames=a.max_frames))
stamps = [f.stamp_ns for f in frames]
backwards = [dataclasses.replace(f, stamp_ns=s) for f, s in zip(reversed(frames), stamps)]
print(write_bag(backwards, a.out), "frames written backwards to", a.out)
