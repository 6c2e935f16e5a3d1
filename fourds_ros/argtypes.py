"""argparse types of the command lines' numbers, in one light module (no ROS, no torch, no transforms3d:
`bench engines` imports it on a GPU machine's bare image)."""

from __future__ import annotations

import argparse
import math


def frame_count(text: str) -> int:
    """argparse type of --max-frames and --stride: a whole number of frames, at least 1. Why: `--max-frames -3`
    wrote every frame but the last three (a Python slice), and `--max-frames 0` failed later on an empty bag."""
    return _whole(text, 1)


def frame_index(text: str) -> int:
    """argparse type of --start: a frame index, at least 0 (a negative one counted from the end)."""
    return _whole(text, 0)


def pixel_count(text: str) -> int:
    """argparse type of a width in pixels (eval --erode): a whole number, 0 or more (-3 scored as 0 and was
    reported as -3)."""
    return _whole(text, 0)


def sixteen_bit_max(text: str) -> int:
    """argparse type of --image-16bit-max: 1 to 65535, as the node's image_16bit_max (0 was a ZeroDivisionError
    at the first mono16 frame)."""
    return _whole(text, 1, 65535)


def positive_float(text: str) -> float:
    """argparse type of a rate (--fps) or a time limit: a finite number above 0 (`--fps 0` was a
    ZeroDivisionError)."""
    return _finite(text, 0.0, strictly=True)


def count(text: str) -> int:
    """argparse type of a number of start frames (eval and eval-suite --pose-starts): a whole number, 0 or more
    (`--pose-starts -2` ran as 0, unsaid)."""
    return _whole(text, 0)


def seconds(text: str) -> float:
    """argparse type of a time window (bag import --max-dt): a finite number of seconds, 0 or more (inf was a
    traceback, and -0.02 paired nothing and blamed the clocks)."""
    return _finite(text, 0.0, strictly=False)


def _finite(text: str, least: float, strictly: bool) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not (math.isfinite(value) and (value > least if strictly else value >= least)):
        raise argparse.ArgumentTypeError(f"{value} is not a finite number " +
                                         (f"above {least:g}" if strictly else f"of {least:g} or more"))
    return value


def _whole(text: str, least: int, most: int | None = None) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < least:
        raise argparse.ArgumentTypeError(f"{value} is below {least}")
    if most is not None and value > most:
        raise argparse.ArgumentTypeError(f"{value} is above {most}")
    return value


def frame_size(text: str) -> tuple[int, int]:
    """'1280x720' -> (720, 1280), (H, W) as the probe's plan takes it (bench node --size WxH)."""
    w, h = _sides(text, "WIDTHxHEIGHT (e.g. 1280x720)")
    if not (16 <= w <= 7680 and 16 <= h <= 4320):
        raise argparse.ArgumentTypeError(f"{text!r}: width 16-7680 and height 16-4320")
    return h, w


def image_size(text: str) -> tuple[int, int]:
    """argparse type of --size HxW (training.synthetic_bag): two whole numbers of at least 16 pixels."""
    h, w = _sides(text, "HxW (e.g. 240x320)")
    if min(h, w) < 16:
        raise argparse.ArgumentTypeError(f"{text}: each side at least 16 pixels")
    return h, w


def _sides(text: str, form: str) -> tuple[int, int]:
    try:
        a, b = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not {form}") from None
    return a, b
