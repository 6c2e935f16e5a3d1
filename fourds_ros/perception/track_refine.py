"""Sub-pixel refinement of the tracks head's positions on the camera image. No rclpy.

Why: the head localises a point on a feature grid of stride 4 at the model's resolution (128 px
across a 480 px crop for the default model), so one feature cell is ~15 camera pixels; its median
error one to seven frames after the query is 1.7 px on the TAP-Vid 256 px scale on 7-Scenes, where
pyramidal LK on the full image reaches 0.9 (models/fourds_default/README.md). The head is good at
*where roughly* (it does not drift like frame-to-frame flow and knows when a point is occluded);
the camera image has the detail for *exactly where*.

How: when a track is seeded, a patch of the camera image around its query point is kept as its
template (grayscale, `half_size` pixels each side). In every later frame the template is matched
(normalised cross-correlation) within `search_radius` camera pixels of the head's prediction; the
peak, refined to sub-pixel by a quadratic fit, replaces the prediction when its score reaches
`min_score`. Otherwise (appearance changed, occluded, textureless, window off the image) the
head's prediction stands. The template is never updated, so refinement cannot drift: each frame
is matched against the query's own appearance.
"""

from __future__ import annotations

import cv2
import numpy as np


def gray(rgb: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 RGB -> (H, W) float32 grayscale."""
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).astype(np.float32)


def _quadratic_peak(scores: np.ndarray, row: int, col: int) -> tuple[float, float]:
    """Sub-pixel (dx, dy) of the maximum of `scores` at (row, col), from a 2D quadratic fit to its
    3x3 neighbourhood. 2D, not one parabola per axis: at a corner on a slanted edge the score
    ridge runs diagonally, and separate fits then miss by up to a pixel. (0, 0) on the border or
    where the fit has no maximum within one pixel."""
    if not (0 < row < scores.shape[0] - 1 and 0 < col < scores.shape[1] - 1):
        return 0.0, 0.0
    # Scalar arithmetic on Python floats: this runs for every track and frame, and numpy's
    # per-call overhead on 3x3 arrays was 40 % of the refinement's time (docs/benchmarks.md).
    (s00, s01, s02), (s10, s11, s12), (s20, s21, s22) = scores[row - 1: row + 2, col - 1: col + 2].tolist()
    gx, gy = (s12 - s10) / 2, (s21 - s01) / 2
    hxx, hyy, hxy = s12 - 2 * s11 + s10, s21 - 2 * s11 + s01, (s22 - s20 - s02 + s00) / 4
    det = hxx * hyy - hxy * hxy
    if hxx >= 0 or det <= 0:  # not a maximum
        return 0.0, 0.0
    dx, dy = -(hyy * gx - hxy * gy) / det, -(hxx * gy - hxy * gx) / det  # the 2x2 Newton step
    return (dx, dy) if max(abs(dx), abs(dy)) <= 1.0 else (0.0, 0.0)


class TemplateRefiner:
    def __init__(self, half_size: int = 10, search_radius: int = 12, min_score: float = 0.6):
        if half_size < 1 or search_radius < 1:
            raise ValueError(f"half_size and search_radius must be >= 1, got {half_size}, {search_radius}")
        self.half_size = int(half_size)
        self.search_radius = int(search_radius)
        self.min_score = float(min_score)

    def _inside(self, image: np.ndarray, u: float, v: float, reach: int) -> bool:
        h, w = image.shape
        return bool(np.isfinite(u) and np.isfinite(v) and reach <= u <= w - 1 - reach and reach <= v <= h - 1 - reach)

    def template(self, image: np.ndarray, u: float, v: float) -> np.ndarray | None:
        """image: (H, W) float32 gray; (u, v) camera pixels -> (2 half + 1)^2 float32 patch
        centred on (u, v) (sub-pixel), or None where it would leave the image or has no texture."""
        if not self._inside(image, u, v, self.half_size):
            return None
        side = 2 * self.half_size + 1
        patch = cv2.getRectSubPix(image, (side, side), (float(u), float(v)))
        return patch if float(patch.std()) > 1.0 else None  # flat patches match anywhere

    def refine(self, image: np.ndarray, template: np.ndarray, u: float, v: float) -> tuple[float, float, float]:
        """-> (u, v, score): the template's best match within search_radius of (u, v), or (u, v)
        unchanged with its score (NaN where no match was tried) when the match is below min_score."""
        reach = self.half_size + self.search_radius
        if not self._inside(image, u, v, reach):
            return u, v, float("nan")
        side = 2 * reach + 1
        window = cv2.getRectSubPix(image, (side, side), (float(u), float(v)))
        scores = cv2.matchTemplate(window, template, cv2.TM_CCOEFF_NORMED)  # (2 r + 1, 2 r + 1)
        _, best, _, (col, row) = cv2.minMaxLoc(scores)
        if not best >= self.min_score:  # also rejects NaN scores
            return u, v, float(best)
        dx, dy = _quadratic_peak(scores, row, col)
        r = self.search_radius
        return u + (col - r) + dx, v + (row - r) + dy, float(best)


REFINEMENTS = ("template", "none")


def make_refiner(track_refinement: str) -> TemplateRefiner | None:
    """The `track_refinement` setting ("template" | "none") -> a refiner with the defaults, or None."""
    if track_refinement not in REFINEMENTS:
        raise ValueError(f"track_refinement must be one of {REFINEMENTS}, got {track_refinement!r}")
    return TemplateRefiner() if track_refinement == "template" else None
