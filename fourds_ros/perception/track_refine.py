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

`flow` (track_refinement: flow) follows each track from its own position in the previous frame
with pyramidal Lucas-Kanade first, and falls back to the template match near the head's
prediction only where LK fails. Why: a fixed template stops matching a point whose appearance
changes (an animal's joint bending, a surface turning), and the head alone then stands, off by
several camera pixels; frame-to-frame LK follows a deforming point as long as it is seen. The
head keeps what LK cannot do: it re-finds a point after LK loses it and decides visibility.
Where LK fails, the head's position is taken only when the image confirms it (the head calls the
point visible and the template matches near it with a score of `confirm_score`); otherwise the
track moves with its neighbours: the median step of the `neighbours` nearest tracks LK did follow
into this frame (local, so a limb and a body, or the two sides of a turning camera's view, each
move their own way). Why: an
unconfirmed head position was several pixels off on animals, and taking it cost BADJA PCK on
every clip (session 15: BADJA PCK 0.520 -> 0.592 mean, validation; TUM AJ 0.308 -> 0.319).
Measured on the BADJA clips (validation) and TUM fr1/rpy in models/fourds_default/README.md.
"""

from __future__ import annotations

import cv2
import numpy as np


def gray8(rgb: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 RGB -> (H, W) uint8 grayscale: what LK and the corner detector read."""
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)


def gray(rgb: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 RGB -> (H, W) float32 grayscale (whole grey levels): what the templates are cut
    from and matched on, to sub-pixel."""
    return gray8(rgb).astype(np.float32)


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
    def __init__(self, half_size: int = 10, search_radius: int = 12, min_score: float = 0.6, flow: bool = False,
                 neighbours: int = 8, confirm_score: float = 0.8, lk_check_px: float = 0.0):
        if half_size < 1 or search_radius < 1 or neighbours < 1:
            raise ValueError(f"half_size, search_radius and neighbours must be >= 1, got {half_size}, "
                             f"{search_radius}, {neighbours}")
        self.flow = bool(flow)  # follow() tries LK from the previous frame before the template
        # flow: a track neither LK nor a confirmed head position places moves by the median step of
        # this many nearest LK-followed tracks (8: the first value tried, not tuned).
        self.neighbours = int(neighbours)
        # flow: the template score that confirms the head's position where LK failed. Stricter than
        # min_score, since here the alternative is the neighbours' motion, not the raw head: chosen on
        # the validation recordings (0.6 / 0.8: BADJA PCK 0.561 / 0.592, TUM AJ in the model card).
        self.confirm_score = float(confirm_score)
        # flow: an LK step counts only where LK run back lands within this many pixels (0: off;
        # the track_lk_check_px setting says what it gains and costs).
        self.lk_check_px = float(lk_check_px)
        self.half_size = int(half_size)
        self.search_radius = int(search_radius)
        self.min_score = float(min_score)
        # flow: what decided each track step (follow): how much of a track the head really places.
        self.counts = {"track_steps": 0, "track_steps_lk_lost": 0, "track_steps_head_taken": 0}

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


    def follow(self, previous: np.ndarray | None, image: np.ndarray, uv_previous: np.ndarray, uv_head: np.ndarray,
               head_visible: np.ndarray, templates: list) -> np.ndarray:
        """One frame of every track: -> (N, 2) camera pixels. previous, image: (H, W) float32 gray
        of the last and this frame (previous is only read when this refiner follows flow);
        uv_previous: (N, 2) where each track was in `previous`; uv_head: (N, 2) the head's
        prediction in `image`; head_visible: (N,) bool; templates: N patches or None. Without
        flow: the head's prediction, refined against the template where the head calls the point
        visible and the template matches. previous and image may be uint8 or float32 gray (whole grey
        levels): LK reads them as uint8, the templates match on float32. With flow: LK from uv_previous wherever it succeeds
        (lk_step); elsewhere the head's prediction where it is visible and its template matches
        near it, and otherwise uv_previous moved by its neighbours' LK steps (neighbour_steps;
        the head's prediction when no track was followed)."""
        out = np.array(uv_head, dtype=np.float64, copy=True)
        visible = np.asarray(head_visible, bool)
        if not self.flow or not len(out):
            matched = np.asarray(image, np.float32)
            for j in np.flatnonzero(visible):
                if templates[j] is not None:
                    out[j, 0], out[j, 1], _ = self.refine(matched, templates[j], out[j, 0], out[j, 1])
            return out
        moved, tracked = lk_step(previous, image, uv_previous, match_exposure=True)
        if self.lk_check_px > 0:  # a step that does not lead back is treated as one LK lost
            tracked &= forward_backward_agrees(previous, image, uv_previous, moved, tracked, self.lk_check_px)
        out[tracked] = moved[tracked]
        lost = np.flatnonzero(~tracked)
        self.counts["track_steps"] += len(out)
        self.counts["track_steps_lk_lost"] += len(lost)
        if not len(lost):
            return out
        confirmed = np.zeros(len(out), bool)
        matched = np.asarray(image, np.float32)
        for j in lost[visible[lost]]:
            if templates[j] is not None:
                u, v, score = self.refine(matched, templates[j], out[j, 0], out[j, 1])
                if score >= self.confirm_score:
                    out[j], confirmed[j] = (u, v), True
        self.counts["track_steps_head_taken"] += int(confirmed.sum())
        rest = lost[~confirmed[lost]]
        if len(rest) and tracked.any():
            start = np.asarray(uv_previous, np.float64)[rest]
            step = neighbour_steps(start, uv_previous, moved, tracked, self.neighbours)
            ok = np.isfinite(step).all(1)
            out[rest[ok]] = start[ok] + step[ok]
        return out


def forward_backward_agrees(previous: np.ndarray, image: np.ndarray, uv_previous: np.ndarray, moved: np.ndarray,
                            tracked: np.ndarray, max_px: float) -> np.ndarray:
    """(N,) bool: LK run back from `moved` in `image` into `previous` ends within `max_px` camera
    pixels of `uv_previous`, for the `tracked` rows (False elsewhere). Why: LK accepts a step on
    its status and residual, and a step that slid onto the background or along an edge keeps a low
    residual; run backwards, such a step does not return to where it started."""
    agrees = np.zeros(len(tracked), bool)
    rows = np.flatnonzero(tracked)
    if not len(rows):
        return agrees
    back, ok = lk_step(image, previous, np.asarray(moved, np.float64)[rows], match_exposure=True)
    error = np.linalg.norm(back - np.asarray(uv_previous, np.float64)[rows], axis=1)
    agrees[rows] = ok & (error <= max_px)
    return agrees


def neighbour_steps(points: np.ndarray, uv_previous: np.ndarray, moved: np.ndarray, tracked: np.ndarray,
                    k: int) -> np.ndarray:
    """(M, 2) the median step (moved - uv_previous) of the k followed tracks (`tracked`) nearest to
    each of `points` (M, 2) in the previous frame; NaN rows where a point is not finite."""
    prev = np.asarray(uv_previous, np.float64)[tracked]
    steps = np.asarray(moved, np.float64)[tracked] - prev
    points = np.asarray(points, np.float64)
    out = np.full(points.shape, np.nan)
    finite = np.isfinite(points).all(1)
    if not finite.any() or not len(prev):
        return out
    distance = np.linalg.norm(points[finite, None, :] - prev[None, :, :], axis=2)  # (M', K)
    k = min(k, len(prev))
    nearest = np.argpartition(distance, k - 1, axis=1)[:, :k]
    out[finite] = np.median(steps[nearest], axis=1)
    return out


# Pyramidal LK as the classical peer runs it (evaluation/peers.lk_tracks calls lk_step too): 21 px
# window, 3 levels, and a step is accepted below a mean absolute residual of 30 grey levels.
LK_WINDOW = 21
LK_LEVELS = 3
LK_MAX_RESIDUAL = 30.0
_LK_CRITERIA = (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 30, 0.01)


def lk_step(previous: np.ndarray, image: np.ndarray, uv: np.ndarray, window: int = LK_WINDOW,
            levels: int = LK_LEVELS, max_residual: float = LK_MAX_RESIDUAL,
            match_exposure: bool = False, guess: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Pyramidal LK of (N, 2) camera pixels from `previous` to `image` ((H, W) gray, float32 0-255
    or uint8) -> (moved (N, 2) float64, ok (N,) bool). Not ok: LK's status, a residual above
    max_residual, a non-finite start or an end outside the image (moved keeps the start there).
    match_exposure: `image` first brought to `previous`'s exposure (match_exposure_of), because
    LK assumes that a point keeps its brightness, and a camera's exposure or the room's light
    changing between two frames changes every point's.
    guess: optional (N, 2) camera pixels in `image` where LK starts its search instead of at uv
    (e.g. where the camera's rotation moves them); a non-finite guess starts at uv."""
    if match_exposure:
        image = match_exposure_of(image, previous)
    uv = np.asarray(uv, np.float64).reshape(-1, 2)
    ok = np.isfinite(uv).all(1)
    moved = uv.copy()
    if not ok.any():
        return moved, ok
    start = uv[ok].astype(np.float32).reshape(-1, 1, 2)
    initial, flags = None, 0
    if guess is not None:
        initial = np.asarray(guess, np.float64).reshape(-1, 2)[ok]
        initial = np.where(np.isfinite(initial), initial, uv[ok]).astype(np.float32).reshape(-1, 1, 2)
        flags = cv2.OPTFLOW_USE_INITIAL_FLOW
    end, status, residual = cv2.calcOpticalFlowPyrLK(
        _as_uint8(previous), _as_uint8(image), start, initial, winSize=(window, window), maxLevel=levels,
        criteria=_LK_CRITERIA, flags=flags)
    end = end.reshape(-1, 2).astype(np.float64)
    h, w = image.shape[:2]
    good = (status.reshape(-1) == 1) & (residual.reshape(-1) < max_residual) & np.isfinite(end).all(1)
    good &= (end[:, 0] >= 0) & (end[:, 0] <= w - 1) & (end[:, 1] >= 0) & (end[:, 1] <= h - 1)
    rows = np.flatnonzero(ok)
    moved[rows[good]] = end[good]
    ok[rows[~good]] = False
    return moved, ok


# An exposure step between two frames below which LK runs on the images as they are. Matching
# every frame made the 7-Scenes kitchen's ATE (mean of 6 starts) 0.061 -> 0.074 m and its AJ
# 1.14x -> 1.02x LK, and BADJA's PCK 0.586 -> 0.574; matching steps of 5 % or more only: TUM AJ
# (validation) 1.25x -> 1.32x LK, BADJA unchanged, kitchen ATE 0.068 m. A room's light falling to
# half in a third of a second steps 5-9 % a frame (model card, session 22).
EXPOSURE_STEP = 0.05


def match_exposure_of(image: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """(H, W) gray `image` scaled by one gain to `reference`'s exposure (float32) when the two
    differ by EXPOSURE_STEP or more; else `image` unchanged. The gain is the median ratio of the
    two images, pixel by pixel at 1/16 of their size, where neither is near black or saturated:
    at that size a camera's motion between two frames moves little, so the ratio is the
    exposure's (percentiles of the whole images also change with what comes into view)."""
    h, w = image.shape[:2]
    size = (max(w // 16, 1), max(h // 16, 1))
    small = cv2.resize(np.asarray(image, np.float32), size, interpolation=cv2.INTER_AREA)
    ref_small = cv2.resize(np.asarray(reference, np.float32), size, interpolation=cv2.INTER_AREA)
    usable = (small > 10) & (small < 245) & (ref_small > 10) & (ref_small < 245)
    gain = float(np.median(ref_small[usable] / small[usable])) if usable.sum() >= 16 else 1.0
    if abs(gain - 1.0) < EXPOSURE_STEP:
        return image
    return np.asarray(image, np.float32) * np.float32(gain)


def _as_uint8(image: np.ndarray) -> np.ndarray:
    """A uint8 gray as it is; gray()'s float32 whole grey levels, or an exposure-matched image, as uint8 (LK
    and the corner detector want it): a clip's images are gray8 already (ClipImages), since this conversion
    of a 640x480 image, twice in every LK step, was about 7 ms of a clip's classical steps."""
    return image if image.dtype == np.uint8 else np.clip(image, 0, 255).astype(np.uint8)


REFINEMENTS = ("flow", "template", "none")


def make_refiner(track_refinement: str, lk_check_px: float = 0.0) -> TemplateRefiner | None:
    """The `track_refinement` setting ("flow" | "template" | "none") and `track_lk_check_px` -> a
    refiner with the defaults otherwise, or None."""
    if track_refinement not in REFINEMENTS:
        raise ValueError(f"track_refinement must be one of {REFINEMENTS}, got {track_refinement!r}")
    return None if track_refinement == "none" else TemplateRefiner(flow=track_refinement == "flow",
                                                                    lk_check_px=lk_check_px)
