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


def positive_float(text: str) -> float:
    """argparse type of a rate (--fps): a finite number above 0 (`--fps 0` was a ZeroDivisionError)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not (value > 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"{value} is not a finite number above 0")
    return value


def _whole(text: str, least: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < least:
        raise argparse.ArgumentTypeError(f"{value} is below {least}")
    return value
